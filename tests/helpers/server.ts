/**
 * Starts a real Cadence server for a test: free loopback ports, a temporary
 * data directory (removed on stop), storage as chosen (sqlite by default).
 *
 * @example
 * ```ts
 * const t = await startTestServer({ authentication: "internal_plain" });
 * await t.server.users("localhost")!.createUser("juliet", "pw");
 * // … connect to t.port …
 * await t.stop();
 * ```
 * @module
 */
import { createServer } from "node:net";
import { type Config, validateConfig } from "../../core/config.ts";
import { Server } from "../../core/server.ts";
import { ModuleManager } from "../../core/modulemanager.ts";

export interface TestServer {
  server: Server;
  /** Plain c2s port (STARTTLS offered). */
  port: number;
  /** Direct TLS port (XEP-0368). */
  tlsPort: number;
  /** HTTP port (WebSocket, BOSH, …), when the http module is loaded. */
  httpPort: number;
  dataDir: string;
  /** Stops the server and removes its data (or keeps it, to start again on it). */
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a server; pass the `dataDir` of a stopped one (stopped with
 * `keepData`) to restart on the same data.
 */
export async function startTestServer(
  options: Partial<Config> = {},
  existingDataDir?: string,
): Promise<TestServer> {
  const dataDir = existingDataDir ?? await Deno.makeTempDir({ prefix: "cadence-test-" });
  // Ports are free when picked but a parallel test may take one before the
  // server binds it: on "address in use", pick again (a few times).
  for (let attempt = 1;; attempt++) {
    const port = await freePort();
    const tlsPort = await freePort();
    const httpPort = await freePort();
    const raw: Config = {
      virtual_hosts: { localhost: {} },
      interfaces: ["127.0.0.1"],
      c2s_ports: [port],
      c2s_direct_tls_ports: [tlsPort],
      // Federation and HTTP are on by default: ports of their own (tests run side by side).
      s2s_ports: [await freePort()],
      http_ports: [httpPort],
      https_ports: [],
      data_path: dataDir,
      ...options,
    } as Config;
    const config = validateConfig(raw, {
      configDir: dataDir,
      builtinModulesDir: ModuleManager.builtinDir,
    });
    const server = new Server(config);
    try {
      await server.start();
    } catch (e) {
      await server.stop().catch(() => {});
      if (attempt < 5 && /address (already )?in use|EADDRINUSE/i.test(String(e))) continue;
      // A caller's directory holds data it means to keep: only ours is removed.
      if (!existingDataDir) await Deno.remove(dataDir, { recursive: true });
      throw e;
    }
    return running(server, port, tlsPort, httpPort, dataDir);
  }
}

function running(
  server: Server,
  port: number,
  tlsPort: number,
  httpPort: number,
  dataDir: string,
): TestServer {
  let stopped = false;
  return {
    server,
    port,
    tlsPort,
    httpPort,
    dataDir,
    async stop(opts = {}) {
      if (stopped) return; // a `finally` may stop a server stopped already
      stopped = true;
      await server.stop("test finished");
      if (!opts.keepData) await Deno.remove(dataDir, { recursive: true });
    },
  };
}
