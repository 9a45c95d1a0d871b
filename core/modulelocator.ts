/**
 * Finds a module's file by name, as Prosody's plugin loader does: each
 * directory of `plugin_paths` in order, then the built-in `modules/`. In each
 * directory the names tried are `mod_<name>.ts`, `mod_<name>/mod.ts`,
 * `<name>.ts` and `<name>/mod.ts`.
 *
 * @example
 * ```ts
 * locateModule("ping", ["/etc/cadence/plugins"], "/opt/cadence/modules");
 * // "/opt/cadence/modules/ping.ts"
 * ```
 * @module
 */
import { statSync } from "node:fs";
import { join } from "node:path";

const VALID_NAME = /^[a-z0-9_][a-z0-9_.-]*$/i;

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The absolute path of the module's file, or undefined when there is none. */
export function locateModule(
  name: string,
  pluginPaths: string[],
  builtinDir: string,
): string | undefined {
  if (!VALID_NAME.test(name) || name.includes("..")) return undefined;
  for (const dir of [...pluginPaths, builtinDir]) {
    for (
      const candidate of [`mod_${name}.ts`, `mod_${name}/mod.ts`, `${name}.ts`, `${name}/mod.ts`]
    ) {
      const path = join(dir, candidate);
      if (isFile(path)) return path;
    }
  }
  return undefined;
}
