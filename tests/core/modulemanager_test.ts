/** Module lifecycle: load, unload (everything the module added goes), reload with state, depends. */
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const COUNTER = `
let state = { loads: 0 };
export function save() { return state; }
export function restore(s) { state.loads += s.loads; }
export default (module) => {
  state.loads++;
  module.exports.loads = () => state.loads;
  module.hook("test/event", () => "counter:" + state.loads);
  module.addItem("thing", "counter-thing");
  module.addFeature("urn:example:counter");
  module.addTimer(0.05, () => { globalThis.counterTimerFired = true; });
};
`;

const DEPENDANT = `
export default async (module) => {
  const counter = await module.depends("counter");
  module.hook("test/dependant", () => "loads=" + counter.loads());
};
`;

const BROKEN = `export default () => { throw new Error("I am broken"); };`;

async function withPlugins(fn: (t: TestServer) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cadence-mods-" });
  await Deno.writeTextFile(`${dir}/counter.ts`, COUNTER);
  await Deno.writeTextFile(`${dir}/dependant.ts`, DEPENDANT);
  await Deno.writeTextFile(`${dir}/broken.ts`, BROKEN);
  const t = await startTestServer({ plugin_paths: [dir], modules_enabled: ["disco"] });
  try {
    await fn(t);
  } finally {
    await t.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("unload removes every hook, timer, item and feature the module added", async () => {
  await withPlugins(async (t) => {
    const host = t.server.hosts.get("localhost")!;
    const removed: unknown[] = [];
    host.events.on("item-removed/thing", (e: { item: unknown }) => void removed.push(e.item));
    await t.server.modules.load("localhost", "counter");
    assert.equal(host.events.fire("test/event", {}), "counter:1");
    await t.server.modules.unload("localhost", "counter");
    assert.equal(host.events.fire("test/event", {}), undefined);
    assert.deepEqual(removed, ["counter-thing"]);
    const disco = t.server.modules.get("localhost", "disco")!;
    assert.ok(!disco.hostItems("feature").includes("urn:example:counter"));
    await new Promise((r) => setTimeout(r, 120));
    assert.equal((globalThis as Record<string, unknown>).counterTimerFired, undefined);
  });
});

Deno.test("reload runs the new code with the state save() returned", async () => {
  await withPlugins(async (t) => {
    const host = t.server.hosts.get("localhost")!;
    await t.server.modules.load("localhost", "counter");
    await t.server.modules.reload("localhost", "counter");
    assert.equal(host.events.fire("test/event", {}), "counter:2");
    await t.server.modules.unload("localhost", "counter");
  });
});

Deno.test("reload runs the file as it is now, even a module without save()", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-reload-" });
  const version = (n: number) =>
    `export default (module) => { module.hook("test/version", () => "v${n}"); };`;
  await Deno.writeTextFile(`${dir}/versioned.ts`, version(1));
  const t = await startTestServer({ plugin_paths: [dir] });
  try {
    const host = t.server.hosts.get("localhost")!;
    await t.server.modules.load("localhost", "versioned");
    assert.equal(host.events.fire("test/version", {}), "v1");
    await Deno.writeTextFile(`${dir}/versioned.ts`, version(2));
    await t.server.modules.reload("localhost", "versioned");
    assert.equal(host.events.fire("test/version", {}), "v2");
    // A file that no longer compiles leaves the running version in place.
    await Deno.writeTextFile(`${dir}/versioned.ts`, "export default (module) => {");
    await assert.rejects(() => t.server.modules.reload("localhost", "versioned"));
    assert.equal(host.events.fire("test/version", {}), "v2");
  } finally {
    await t.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("depends loads the dependency first; unloading it unloads the dependant", async () => {
  await withPlugins(async (t) => {
    const host = t.server.hosts.get("localhost")!;
    await t.server.modules.load("localhost", "dependant");
    assert.ok(t.server.modules.isLoaded("localhost", "counter"));
    assert.equal(host.events.fire("test/dependant", {}), "loads=1");
    await t.server.modules.unload("localhost", "counter");
    assert.equal(t.server.modules.isLoaded("localhost", "dependant"), false);
    assert.equal(host.events.fire("test/dependant", {}), undefined);
  });
});

Deno.test("a module that throws while loading is reported and leaves nothing behind", async () => {
  await withPlugins(async (t) => {
    await assert.rejects(
      () => t.server.modules.load("localhost", "broken"),
      /module "broken" failed to load on localhost: I am broken/,
    );
    assert.equal(t.server.modules.isLoaded("localhost", "broken"), false);
    await assert.rejects(() => t.server.modules.load("localhost", "../etc/passwd"), /not found/);
  });
});
