/**
 * Runs a fresh server as a subprocess for one measured run: its own
 * temporary directory (configuration file and data), a free loopback port,
 * log level warn; SIGTERM (then SIGKILL) and removal of the directory at the
 * end. {@link ServerProcess.start} runs Cadence; {@link ServerProcess.spawn}
 * any command (the peers in bench/peers/). Accounts are created once into a
 * template data directory, which each run copies, so registration never
 * costs a run anything.
 * @module
 */
import { createServer, Socket } from "node:net";
import { assertLoopback } from "./connection.ts";
import { processTree, startTime, treeCpuMs, treeRssKiB } from "./proc.ts";

/** The checkout whose `main.ts` is run: this repository unless {@link useServerRoot} says otherwise. */
let root = new URL("..", import.meta.url).pathname;

/** The checkout the server runs from. */
export function serverRoot(): string {
  return root;
}

/** Runs the server (and its admin CLI) from another checkout, to compare two versions. */
export function useServerRoot(dir: string): void {
  root = dir;
}
/** The only address the server listens on and the generator connects to. */
export const SERVER_HOST = "127.0.0.1";
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const SETTLE_LIMIT_MS = 30_000;
const TAIL_BYTES = 8192;

/** Configuration options on top of the fixed ones (ports, interfaces, data path, log). */
export type ConfigOptions = Record<string, unknown>;

/** A TCP port free on the loopback interface right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, SERVER_HOST, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Writes a configuration file into `dir` and returns its path. */
async function writeConfig(
  dir: string,
  dataPath: string,
  port: number,
  options: ConfigOptions,
): Promise<string> {
  const config = {
    virtual_hosts: { localhost: {} },
    c2s_ports: [port],
    c2s_direct_tls_ports: [],
    interfaces: [SERVER_HOST],
    data_path: dataPath,
    log: "warn",
    ...options,
  };
  const file = `${dir}/cadence.config.ts`;
  await Deno.writeTextFile(file, `export default ${JSON.stringify(config, null, 2)};\n`);
  return file;
}

/** Copies a directory tree (files and directories only). */
export async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    const src = `${from}/${entry.name}`, dst = `${to}/${entry.name}`;
    if (entry.isDirectory) await copyTree(src, dst);
    else if (entry.isFile) await Deno.copyFile(src, dst);
  }
}

/** Runs `deno run -A main.ts ARGS` in the repository and fails with its output if it fails. */
async function cli(args: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`main.ts ${args.join(" ")} failed (exit ${out.code}):\n${text.slice(-2000)}`);
  }
}

/** Template directories not yet removed, for {@link ServerProcess.stopAll}. */
const templates = new Set<string>();

/** Remembers a template directory, so that {@link ServerProcess.stopAll} removes it. */
export function trackTemplate(dir: string): void {
  templates.add(dir);
}

/** Removes a template directory made by {@link prepareAccounts}. */
export async function removeAccounts(dir: string): Promise<void> {
  templates.delete(dir);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/**
 * Creates a template data directory: writes a configuration file with the
 * given options into a new directory and lets `fill` put data in through it
 * (with no server running). {@link ServerProcess.start} copies the data of
 * a template; remove it with {@link removeAccounts}.
 */
export async function prepareTemplate(
  options: ConfigOptions,
  fill: (configFile: string) => Promise<void>,
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "cadence-bench-accounts-" });
  templates.add(dir);
  const file = await writeConfig(dir, `${dir}/data`, await freePort(), options);
  try {
    await fill(file);
  } catch (e) {
    await removeAccounts(dir);
    throw e;
  }
  return dir;
}

/**
 * Creates a template data directory holding `accounts` registered with the
 * admin CLI (`main.ts register USER localhost PASSWORD --config FILE`) under
 * the given options. Remove it with {@link removeAccounts}.
 */
export function prepareAccounts(
  options: ConfigOptions,
  accounts: { username: string; password: string }[],
): Promise<string> {
  return prepareTemplate(options, async (file) => {
    for (const a of accounts) {
      await cli(["register", a.username, "localhost", a.password, "--config", file]);
    }
  });
}

/** Resolves once `port` accepts a TCP connection; rejects after `ms` or if `exited` settles first. */
export async function waitForPort(
  port: number,
  ms: number,
  exited: Promise<unknown>,
): Promise<void> {
  assertLoopback(SERVER_HOST);
  const deadline = performance.now() + ms;
  let gone = false;
  exited.then(() => gone = true);
  while (performance.now() < deadline && !gone) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
      s.connect(port, SERVER_HOST);
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(gone ? "server exited during start-up" : `port ${port} not open after ${ms} ms`);
}

/** A running server subprocess. */
export class ServerProcess {
  /** Servers started and not yet stopped, for {@link ServerProcess.stopAll}. */
  private static running = new Set<ServerProcess>();
  private tail = "";

  private constructor(
    /** The server's process id (the `deno` process running main.ts, Prosody's lua, beam.smp). */
    readonly pid: number,
    /** Its c2s port on {@link SERVER_HOST}. */
    readonly port: number,
    /** Its temporary directory (configuration and data). */
    readonly dir: string,
    private readonly child: Deno.ChildProcess,
  ) {
    this.drain(child.stdout);
    this.drain(child.stderr);
    ServerProcess.running.add(this);
  }

  /** Stops every server still running and removes leftover templates (on Ctrl-C, say). */
  static async stopAll(): Promise<void> {
    await Promise.all([...ServerProcess.running].map((s) => s.stop()));
    await Promise.all([...templates].map(removeAccounts));
  }

  /**
   * Starts a fresh server with `options`, its data copied from `template`
   * (a directory from {@link prepareAccounts}) when given, and waits until
   * its port accepts connections.
   */
  static async start(options: ConfigOptions, template?: string): Promise<ServerProcess> {
    const dir = await Deno.makeTempDir({ prefix: "cadence-bench-" });
    const port = await freePort();
    if (template) await copyTree(`${template}/data`, `${dir}/data`);
    const file = await writeConfig(dir, `${dir}/data`, port, options);
    return await ServerProcess.spawn({
      command: Deno.execPath(),
      args: ["run", "-A", "main.ts", "start", "--config", file],
      cwd: root,
      dir,
      port,
    });
  }

  /**
   * Starts `command` (which must listen on `port` of {@link SERVER_HOST})
   * and waits until the port accepts connections. `dir` is removed when the
   * server stops; so is the server if it does not come up.
   */
  static async spawn(o: {
    command: string;
    args: string[];
    cwd: string;
    dir: string;
    port: number;
    env?: Record<string, string>;
    /** Skip waiting for start-up work to finish (see {@link ServerProcess.settle}). */
    noSettle?: boolean;
  }): Promise<ServerProcess> {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(o.command, {
        args: o.args,
        cwd: o.cwd,
        env: o.env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      await Deno.remove(o.dir, { recursive: true }).catch(() => {});
      throw e;
    }
    const server = new ServerProcess(child.pid, o.port, o.dir, child);
    try {
      await waitForPort(o.port, START_TIMEOUT_MS, child.status);
      if (!o.noSettle) await server.settle();
    } catch (e) {
      await server.stop();
      throw new Error(`${(e as Error).message}; server output:\n${server.output()}`);
    }
    return server;
  }

  /** How long the server took to settle after its port opened, ms (see {@link settle}). */
  settledAfterMs = 0;

  /**
   * Waits until the server's start-up work is over: a 1 s window in which
   * its process tree used at most 20 ms of CPU and its RSS moved by at most
   * 256 KiB (ejabberd, for one, spends about 1.5 s of CPU and 10 s of
   * shrinking RSS after its port opens). Gives up after 30 s.
   */
  async settle(): Promise<void> {
    const start = performance.now();
    let cpu = await this.cpuMs(), rss = await this.rssKiB();
    while (performance.now() - start < SETTLE_LIMIT_MS) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const cpuNow = await this.cpuMs(), rssNow = await this.rssKiB();
      const quiet = cpuNow - cpu <= 20 && Math.abs(rssNow - rss) <= 256;
      cpu = cpuNow;
      rss = rssNow;
      if (quiet) break;
    }
    this.settledAfterMs = performance.now() - start;
  }

  /** CPU time (ms) of the server's whole process tree so far. */
  cpuMs(): Promise<number> {
    return treeCpuMs(this.pid);
  }

  /** Resident memory (KiB) of the server's whole process tree now. */
  rssKiB(): Promise<number> {
    return treeRssKiB(this.pid);
  }

  /** The last few KiB the server wrote to stdout and stderr. */
  output(): string {
    return this.tail;
  }

  private async drain(stream: ReadableStream<Uint8Array>) {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      this.tail = (this.tail + decoder.decode(chunk, { stream: true })).slice(-TAIL_BYTES);
    }
  }

  /**
   * Stops the server with SIGTERM (SIGKILL if it has not exited within 15 s),
   * removes its directory, and returns its exit code.
   */
  async stop(o: { keepDir?: boolean } = {}): Promise<number> {
    ServerProcess.running.delete(this);
    // Its helpers (beam.smp's erl_child_setup, port programs) are killed too if they outlive it.
    const helpers: { pid: number; start?: string }[] = [];
    for (const pid of (await processTree(this.pid).catch(() => [this.pid])).slice(1)) {
      helpers.push({ pid, start: await startTime(pid) });
    }
    try {
      this.child.kill("SIGTERM");
    } catch { /* already exited */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), STOP_TIMEOUT_MS);
    });
    let status = await Promise.race([this.child.status, killed]);
    clearTimeout(timer);
    if (status === "timeout") {
      this.tail += "\n[bench] server ignored SIGTERM for 15 s; sent SIGKILL";
      this.child.kill("SIGKILL");
      status = await this.child.status;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const h of helpers) {
      try {
        // Only if it is still the same process (same start time), never a later one with its pid.
        if (h.start && (await startTime(h.pid)) === h.start) Deno.kill(h.pid, "SIGKILL");
      } catch { /* gone */ }
    }
    if (!o.keepDir) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    return status.code;
  }
}
