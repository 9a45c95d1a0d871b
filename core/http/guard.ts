/**
 * The connection guard in front of the HTTP server. `Deno.serve` shows
 * requests, never connections, and has no header timeout: a client could
 * open connections and dribble half a request head on each (slowloris)
 * until the process runs out of file descriptors. So the server's public
 * listeners are ours: each connection is counted and timed here, then
 * piped to `Deno.serve` listening on a loopback port of its own.
 *
 * - at most `maxPerIp` connections from one address, or IPv6 /64 (trusted proxies,
 *   which carry many clients, excepted), `maxTotal` in all: over that, a
 *   plain connection gets `503` and is closed, a TLS one is closed;
 * - a plain connection must send a whole request head within
 *   `headerTimeout` of opening (else `408` and close), a TLS one its
 *   ClientHello (else closed);
 * - a TLS connection goes to the endpoint holding the certificate of the
 *   host its ClientHello names (SNI, `sni.ts`), else the default one;
 * - a connection with no byte either way for `idleTimeout` is closed
 *   (longer than BOSH holds a request and WebSocket pings come).
 *
 * The server asks `clientOf(port)` for the address of the client behind
 * one of the guard's own connections; connections to its loopback port
 * that are not the guard's are refused there.
 *
 * @example
 * ```ts
 * const guard = new ConnectionGuard({ maxPerIp: 64, maxTotal: 10000, headerTimeout: 30_000,
 *   idleTimeout: 300_000, exempt: ["127.0.0.1"], log });
 * const addr = await guard.listen({ hostname: "0.0.0.0", port: 5280 }, backendAddr, true);
 * ```
 * @module
 */
import type { Logger } from "../log.ts";
import { addressGroup, plainAddress } from "../net/connection.ts";
import { clientHelloName, MAX_HELLO } from "./sni.ts";

export interface GuardOptions {
  maxPerIp: number;
  maxTotal: number;
  /** Milliseconds a plain connection has to send its first request head. */
  headerTimeout: number;
  /** Milliseconds without a byte either way before a connection is closed. */
  idleTimeout: number;
  /** Addresses not counted per address (reverse proxies). */
  exempt: string[];
  log: Logger;
}

interface Piped {
  client: Deno.Conn;
  backend: Deno.Conn | undefined;
  ip: string;
  /** What the per-address limit counts it by (the /64 for IPv6); none for the exempt. */
  group: string | undefined;
  lastActive: number;
}

export class ConnectionGuard {
  private listeners: Deno.Listener[] = [];
  private perIp = new Map<string, number>();
  private open = new Set<Piped>();
  /** The guard's connections to the backend, by their local port: the client's address. */
  private clients = new Map<number, string>();
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(private opts: GuardOptions) {}

  /** Opens a public listener whose connections go to `backend`. */
  listen(
    where: { hostname: string; port: number },
    /** Where connections go; for TLS, by the server name the client asks for (SNI). */
    backend: Deno.NetAddr | ((name?: string) => Deno.NetAddr),
    plaintext: boolean,
  ): Deno.NetAddr {
    const listener = Deno.listen({ hostname: where.hostname, port: where.port });
    this.listeners.push(listener);
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.sweep(), Math.min(5000, this.opts.idleTimeout));
      Deno.unrefTimer(this.sweeper as unknown as number);
    }
    (async () => {
      for (;;) {
        let conn: Deno.Conn;
        try {
          conn = await listener.accept();
        } catch (e) {
          if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) return;
          // Out of descriptors, for one: wait a little rather than spin.
          this.opts.log.warn("HTTP accept failed: {error}", { error: e });
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        this.serve(conn, backend, plaintext).catch((e) =>
          this.opts.log.debug("HTTP connection ended: {error}", { error: e })
        );
      }
    })();
    return listener.addr as Deno.NetAddr;
  }

  /** The client behind a guard connection (by the port it came to the backend from). */
  clientOf(port: number): string | undefined {
    return this.clients.get(port);
  }

  /** Closes the listeners and every connection. */
  close(): void {
    for (const l of this.listeners.splice(0)) {
      try {
        l.close();
      } catch { /* closed already */ }
    }
    for (const p of this.open) this.drop(p);
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private async serve(
    client: Deno.Conn,
    target: Deno.NetAddr | ((name?: string) => Deno.NetAddr),
    plaintext: boolean,
  ) {
    const ip = plainAddress((client.remoteAddr as Deno.NetAddr).hostname);
    const counted = !this.opts.exempt.includes(ip);
    const group = addressGroup(ip); // an IPv6 client counts by its /64, as in c2s
    const mine = (this.perIp.get(group) ?? 0) + 1;
    if ((counted && mine > this.opts.maxPerIp) || this.open.size >= this.opts.maxTotal) {
      this.opts.log.info("HTTP connection from {ip} refused: too many connections", { ip });
      if (plaintext) {
        await client.write(refusal(503, "Too many connections")).catch(() => {});
      }
      client.close();
      return;
    }
    if (counted) this.perIp.set(group, mine);
    const p: Piped = {
      client,
      backend: undefined,
      ip,
      group: counted ? group : undefined,
      lastActive: Date.now(),
    };
    this.open.add(p);
    // A plain connection has this long for its request head (else 408), a TLS one for its hello.
    let headTimer: ReturnType<typeof setTimeout> | undefined = setTimeout(() => {
      this.opts.log.debug("HTTP connection from {ip}: nothing whole in time", { ip });
      if (!plaintext) return this.drop(p);
      client.write(refusal(408, "Request Timeout")).catch(() => {}).finally(() => this.drop(p));
    }, this.opts.headerTimeout);
    let port = 0;
    try {
      let first: Uint8Array | undefined;
      let backendAddr: Deno.NetAddr;
      if (typeof target === "function") {
        // TLS with a certificate per host: the ClientHello names the host (SNI).
        const hello = await readHello(client);
        if (!hello) return;
        first = hello.bytes;
        backendAddr = target(hello.name);
      } else backendAddr = target;
      if (!plaintext) {
        // (TLS: the head is encrypted; the idle timeout and the caps bound such connections.)
        clearTimeout(headTimer);
        headTimer = undefined;
      }
      const backend = await Deno.connect({
        hostname: backendAddr.hostname,
        port: backendAddr.port,
      });
      p.backend = backend;
      // Dropped while connecting (the server closing): nothing closed this one yet.
      if (!this.open.has(p)) return backend.close();
      port = (backend.localAddr as Deno.NetAddr).port;
      this.clients.set(port, ip);
      if (first) await writeAll(backend, first);
      // A head ends with an empty line; the HTTP parser takes LF for a line end, as CRLF.
      let lineEnd = 0; // 1: the last byte ended a line; 2: a CR came after it
      await Promise.all([
        this.pump(p, client, backend, (chunk) => {
          if (headTimer === undefined) return;
          for (const b of chunk) {
            if (b !== 10) {
              lineEnd = b === 13 && lineEnd === 1 ? 2 : 0;
              continue;
            }
            if (lineEnd === 0) lineEnd = 1;
            else {
              clearTimeout(headTimer);
              headTimer = undefined;
              return;
            }
          }
        }),
        this.pump(p, backend, client),
      ]);
    } finally {
      this.clients.delete(port);
      if (headTimer !== undefined) clearTimeout(headTimer);
      this.drop(p);
    }
  }

  /** Copies one way until the end; then the other side is told (half close). */
  private async pump(p: Piped, from: Deno.Conn, to: Deno.Conn, seen?: (b: Uint8Array) => void) {
    const buf = new Uint8Array(32 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        p.lastActive = Date.now();
        const chunk = buf.subarray(0, n);
        seen?.(chunk);
        for (let off = 0; off < n;) off += await to.write(chunk.subarray(off));
      }
    } catch {
      // This way is broken; what comes the other way (a 400 for what was sent) still goes.
    }
    await to.closeWrite().catch(() => {});
  }

  private drop(p: Piped) {
    if (!this.open.delete(p)) return;
    if (p.group !== undefined) {
      const n = (this.perIp.get(p.group) ?? 1) - 1;
      if (n <= 0) this.perIp.delete(p.group);
      else this.perIp.set(p.group, n);
    }
    for (const c of [p.client, p.backend]) {
      try {
        c?.close();
      } catch { /* closed already */ }
    }
  }

  private sweep() {
    const limit = Date.now() - this.opts.idleTimeout;
    for (const p of this.open) if (p.lastActive < limit) this.drop(p);
  }
}

/** Reads a TLS ClientHello's first record; its bytes and the name it asks for (or nothing). */
async function readHello(
  client: Deno.Conn,
): Promise<{ bytes: Uint8Array; name?: string } | undefined> {
  let bytes = new Uint8Array(0);
  const buf = new Uint8Array(MAX_HELLO);
  for (;;) {
    const name = clientHelloName(bytes);
    if (name !== null || bytes.length >= MAX_HELLO) return { bytes, name: name ?? undefined };
    const n = await client.read(buf).catch(() => null);
    if (n === null) return undefined;
    const more = new Uint8Array(bytes.length + n);
    more.set(bytes);
    more.set(buf.subarray(0, n), bytes.length);
    bytes = more;
  }
}

async function writeAll(to: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await to.write(bytes.subarray(off));
}

function refusal(status: number, text: string): Uint8Array {
  return new TextEncoder().encode(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${text.length + 1}\r\n\r\n${text}\n`,
  );
}
