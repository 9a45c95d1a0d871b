/**
 * Cadence as a real process (`deno run main.ts start`), for tests that kill
 * it: a configuration file in `dir` on a free loopback port, accounts
 * registered through the admin CLI (password "pw").
 *
 * @example
 * ```ts
 * const cadence = await serverProcess(dir, { limits: false }, ["juliet"]);
 * const server = cadence.start();
 * const c = await cadence.connect();
 * server.kill("SIGKILL");
 * ```
 */
import assert from "node:assert/strict";
import { RawClient } from "./rawclient.ts";
import { freePort } from "./server.ts";

export interface ServerProcess {
  port: number;
  /** Starts the server (again). */
  start(): Deno.ChildProcess;
  /** Connects once the server listens (waits up to 15 s). */
  connect(): Promise<RawClient>;
}

export async function serverProcess(
  dir: string,
  options: Record<string, unknown>,
  users: string[],
): Promise<ServerProcess> {
  const port = await freePort();
  const config = `${dir}/cadence.config.ts`;
  const all = {
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
    virtual_hosts: { localhost: {} },
    interfaces: ["127.0.0.1"],
    c2s_ports: [port],
    c2s_direct_tls_ports: [],
    s2s_ports: [await freePort()], // (not 5269: tests run side by side)
    http_ports: [],
    https_ports: [],
    data_path: dir,
    log: "warn",
    ...options,
  };
  await Deno.writeTextFile(config, `export default ${JSON.stringify(all)};\n`);
  const main = new URL("../../main.ts", import.meta.url).pathname;
  for (const user of users) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "register", user, "localhost", "pw", "--config", config],
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  }
  return {
    port,
    start: () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", main, "start", "--config", config],
        stdout: "null",
        stderr: "inherit",
      }).spawn(),
    async connect() {
      for (let i = 0;; i++) {
        try {
          return await RawClient.connect(port);
        } catch (e) {
          if (i > 150) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
}
