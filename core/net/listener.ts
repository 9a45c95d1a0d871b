/**
 * A listening TCP socket that keeps accepting: bound to an address and port,
 * or inherited from systemd (socket activation, `fd`; see
 * {@link inheritedSockets}).
 *
 * Deno's accept loop stops for good, silently, when the process runs out of
 * file descriptors (accept() fails with EMFILE). So a listener checks itself:
 * when it has accepted nothing for `healthCheckMs`, it connects to itself;
 * if that connection is not accepted, it reopens the listening socket (as
 * Prosody's `accept_retry_interval` pauses and retries). Connections are also
 * capped (`maxConnections`) below the process's descriptor limit, so the
 * server refuses politely instead of running out.
 *
 * @example
 * ```ts
 * const l = new Listener({ host: "127.0.0.1", port: 5222, log }, (socket) => accept(socket));
 * await l.start();
 * l.close();
 * ```
 * @module
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import type { Logger } from "../log.ts";
import { unrefTimeout } from "../timers.ts";

export interface ListenerOptions {
  /** Address to bind ("*" or undefined: every IPv4 and IPv6 address). */
  host?: string;
  port?: number;
  /** An inherited listening socket (systemd socket activation) instead of host/port. */
  fd?: number;
  backlog?: number;
  /** How often an idle listener checks it still accepts (ms); default 10 s, 0 = never. */
  healthCheckMs?: number;
  log: Logger;
}

export class Listener {
  private server: Server | undefined;
  private closed = false;
  private lastAccept = 0;
  private timer = 0;
  /** Local port of our own health-check connection, to drop it when it arrives. */
  private probePort = -1;
  /** Whether the check's connection has been accepted. */
  private probeSeen = false;
  /**
   * Connections accepted during a check before its own connection knows its
   * port (the server side often sees it first): held for those few
   * milliseconds, so that the check's connection is never handed over.
   */
  private heldDuringProbe: Socket[] | undefined;
  private soon = false;

  constructor(
    readonly opts: ListenerOptions,
    private onSocket: (socket: Socket) => void,
  ) {}

  /** Opens the listening socket; rejects with a readable message if it cannot. */
  async start(): Promise<void> {
    await this.open();
    this.schedule();
  }

  /** The bound address, e.g. `127.0.0.1:5222` or `[::]:5222`. */
  address(): string {
    const a = this.server?.address();
    if (!a || typeof a !== "object") return String(this.opts.port ?? `fd ${this.opts.fd}`);
    return a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  /** The bound port (useful when listening on port 0). */
  port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === "object" ? a.port : this.opts.port;
  }

  /** Checks within a second that the listener still accepts (e.g. after refusing a burst). */
  checkSoon(): void {
    if (this.closed || this.soon) return;
    this.soon = true;
    unrefTimeout(() => {
      this.soon = false;
      this.check(true).catch(() => {});
    }, 1000);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.server?.close();
    this.server = undefined;
  }

  private open(): Promise<void> {
    const { host, port, fd, backlog = 511 } = this.opts;
    return new Promise((resolve, reject) => {
      const server = createServer({ pauseOnConnect: false }, (socket) => this.accepted(socket));
      const where = fd !== undefined ? `inherited socket ${fd}` : `${host ?? "*"}:${port}`;
      server.once("error", (e) => reject(new Error(`cannot listen on ${where}: ${e.message}`)));
      server.once("listening", () => {
        server.removeAllListeners("error");
        server.on("error", (e) => {
          this.opts.log.warn("listener {where} failed: {error}; reopening", {
            where: this.address(),
            error: e.message,
          });
          this.reopen();
        });
        this.server = server;
        this.lastAccept = Date.now();
        resolve();
      });
      if (fd !== undefined) server.listen({ fd, backlog });
      else if (host === undefined || host === "*") server.listen({ port, backlog });
      else server.listen({ port, host, backlog });
    });
  }

  private accepted(socket: Socket): void {
    this.lastAccept = Date.now();
    if (this.heldDuringProbe) return void this.heldDuringProbe.push(socket);
    if (this.probePort !== -1 && socket.remotePort === this.probePort) {
      this.probeSeen = true;
      return void socket.destroy();
    }
    this.onSocket(socket);
  }

  /** Hands over the connections held while the check's port was unknown. */
  private releaseHeld(): void {
    const held = this.heldDuringProbe ?? [];
    this.heldDuringProbe = undefined;
    for (const socket of held) this.accepted(socket);
  }

  private schedule(): void {
    const every = this.opts.healthCheckMs ?? 10_000;
    if (every <= 0 || this.closed) return;
    this.timer = unrefTimeout(() => this.check().finally(() => this.schedule()), every);
  }

  /**
   * When idle (or `now`), connects to itself; reopens if that connection is
   * not accepted. A busy event loop can run the probe's timeout before the
   * accept it is waiting for, so one failed probe is not enough: the
   * listener is reopened only when two probes in a row fail and nothing at
   * all was accepted meanwhile.
   */
  private async check(now = false): Promise<void> {
    const every = this.opts.healthCheckMs ?? 10_000;
    if (this.closed || this.opts.fd !== undefined) return;
    if (!now && Date.now() - this.lastAccept < every) return;
    const startedAt = Date.now();
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await this.probe() || this.closed || this.lastAccept >= startedAt) return;
    }
    this.opts.log.warn(
      "listener {where} stopped accepting (out of file descriptors?); reopening",
      { where: this.address() },
    );
    this.reopen();
  }

  /** Connects to the listener; true if the connection was accepted within 3 s. */
  private probe(): Promise<boolean> {
    const target = this.selfAddress();
    if (!target) return Promise.resolve(true);
    this.probeSeen = false;
    this.heldDuringProbe = [];
    return new Promise<boolean>((resolve) => {
      const probe = connect(target);
      const done = (result: boolean) => {
        clearTimeout(t);
        probe.destroy();
        this.releaseHeld();
        this.probePort = -1;
        resolve(result);
      };
      probe.once("connect", () => {
        this.probePort = probe.localPort ?? -1;
        this.releaseHeld();
      });
      probe.once("error", () => done(false));
      const t = unrefTimeout(() => done(this.probeSeen), 3000);
      const poll = () => {
        if (this.probeSeen) done(true);
        else if (!probe.destroyed) unrefTimeout(poll, 20);
      };
      poll();
    });
  }

  private selfAddress(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    if (!a || typeof a !== "object") return undefined;
    const any = a.address === "0.0.0.0" || a.address === "::";
    return { host: any ? (a.family === "IPv6" ? "::1" : "127.0.0.1") : a.address, port: a.port };
  }

  private reopen(): void {
    if (this.closed) return;
    const old = this.server;
    this.server = undefined;
    old?.close();
    this.open().catch((e) => {
      this.opts.log.error("listener cannot reopen: {error}; retrying in 10 s", { error: e });
      unrefTimeout(() => this.reopen(), 10_000);
    });
  }
}

/** A listening socket systemd handed over (socket activation), and its name if it has one. */
export interface InheritedSocket {
  fd: number;
  name?: string;
}

let inherited: InheritedSocket[] | undefined;

/**
 * The listening sockets systemd passed this process (sd_listen_fds(3):
 * `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`, descriptors from 3 on); none
 * when not socket-activated. Read once: the variables are then removed, so
 * child processes do not take them for theirs.
 */
export function inheritedSockets(): InheritedSocket[] {
  if (inherited) return inherited;
  inherited = [];
  const pid = Deno.env.get("LISTEN_PID");
  const count = Number(Deno.env.get("LISTEN_FDS") ?? "0");
  const names = (Deno.env.get("LISTEN_FDNAMES") ?? "").split(":");
  if (pid !== undefined && Number(pid) === Deno.pid && Number.isInteger(count) && count > 0) {
    for (let i = 0; i < count; i++) {
      inherited.push({ fd: 3 + i, name: names[i] || undefined });
    }
  }
  for (const v of ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]) Deno.env.delete(v);
  return inherited;
}

/**
 * The process's soft limit on open files, from /proc (Linux), or undefined
 * where it cannot be read.
 */
export function openFileLimit(): number | undefined {
  try {
    const limits = readFileSync("/proc/self/limits", "utf8");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (!m || m[1] === "unlimited") return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}
