/**
 * core/ reads bottom-up: no file imports (even only types from) a file that
 * imports it back, directly or around a circle. The composition root,
 * core/server.ts, stands above the managers and is imported by none of them.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const CORE = fileURLToPath(new URL("../../core/", import.meta.url));

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...await files(path));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** Each core file's imports of other core files (relative specifiers). */
async function graph(): Promise<Map<string, string[]>> {
  const g = new Map<string, string[]>();
  for (const file of await files(CORE)) {
    const text = await Deno.readTextFile(file);
    const deps: string[] = [];
    for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+"(\.{1,2}\/[^"]+)"/gms)) {
      const target = resolve(dirname(file), m[1]);
      if (target.startsWith(CORE)) deps.push(target);
    }
    g.set(file, deps);
  }
  return g;
}

function cycles(g: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, "visiting");
    stack.push(node);
    for (const dep of g.get(node) ?? []) {
      if (state.get(dep) === "visiting") found.push([...stack.slice(stack.indexOf(dep)), dep]);
      else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of g.keys()) if (!state.has(node)) visit(node);
  return found;
}

Deno.test("core/ has no import cycles, and no manager imports the composition root", async () => {
  const g = await graph();
  const found = cycles(g).map((c) => c.map((f) => relative(CORE, f)).join(" → "));
  assert.deepEqual(found, []);
  const server = join(CORE, "server.ts");
  const importers = [...g].filter(([, deps]) => deps.includes(server)).map(([f]) =>
    relative(CORE, f)
  );
  assert.deepEqual(importers, []);
});
