/**
 * No error a module lets slip can end the server: a hook that rejects, a
 * timer and once() that throw, a timer of the module's own that throws, a
 * promise nobody awaits. The server (a real process, as `start` runs it)
 * logs each with its stack and keeps answering.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { freePort } from "../helpers/server.ts";

const THROWER = `
export default (module) => {
  module.hook("iq-get/host/urn:example:boom:boom", async () => {
    await null;
    throw new Error("boom from a hook");
  });
  module.addTimer(0.05, async () => {
    await null;
    throw new Error("boom from a timer");
  });
  module.once(async () => {
    await null;
    throw new Error("boom from once");
  });
  module.hook("resource-bind", () => {
    setTimeout(() => { throw new Error("boom from setTimeout"); }, 10);
    Promise.reject(new Error("boom from a dropped promise"));
  });
};
`;

Deno.test("errors thrown asynchronously by a module are logged and the server keeps answering", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-crash-" });
  await Deno.writeTextFile(`${dir}/thrower.ts`, THROWER);
  const port = await freePort();
  const config = `${dir}/cadence.config.ts`;
  await Deno.writeTextFile(
    config,
    `export default ${
      JSON.stringify({
        virtual_hosts: { localhost: {} },
        authentication: "internal_plain",
        c2s_require_encryption: false,
        allow_unencrypted_plain_auth: true,
        interfaces: ["127.0.0.1"],
        c2s_ports: [port],
        c2s_direct_tls_ports: [],
        s2s_ports: [await freePort()],
        http_ports: [],
        https_ports: [],
        data_path: dir,
        plugin_paths: [dir],
        modules_enabled: ["saslauth", "thrower", "ping"],
      })
    };\n`,
  );
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const register = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "register", "juliet", "localhost", "pw", "--config", config],
  }).output();
  assert.equal(register.code, 0, new TextDecoder().decode(register.stderr));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "start", "--config", config],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let log = "";
  const decoder = new TextDecoder();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) log += decoder.decode(chunk, { stream: true });
  };
  const reading = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const c = await (async () => {
    for (let i = 0;; i++) {
      try {
        return await RawClient.connect(port);
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
  try {
    await c.login("juliet", "pw");
    c.send("<iq type='get' id='b' to='localhost'><boom xmlns='urn:example:boom'/></iq>");
    await c.waitFor(/<iq [^>]*id="b"[^>]*type="error"[\s\S]*<internal-server-error /);
    await new Promise((r) => setTimeout(r, 500)); // the module's own timer and promise fire
    c.send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await c.waitFor(/<iq [^>]*id="p"[^>]*type="result"/);
    for (
      const what of [
        "boom from a hook",
        "boom from a timer",
        "boom from once",
        "boom from setTimeout",
        "boom from a dropped promise",
      ]
    ) {
      assert.match(log, new RegExp(`\\[ERR\\][^\\n]*${what}`), `${what} not logged:\n${log}`);
    }
  } finally {
    c.close();
    child.kill("SIGTERM");
    const status = await child.status;
    await reading;
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, log);
  }
});
