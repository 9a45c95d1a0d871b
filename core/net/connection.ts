/**
 * One client connection: a `node:net` socket, upgraded in place to TLS for
 * STARTTLS or wrapped from the start for direct TLS (XEP-0368).
 *
 * Output: writes are enqueued on the socket in call order, and reading never
 * waits for output — a client that reads slowly only fills its own buffer.
 * When what waits to be written passes `maxSendBuffer` (Prosody's
 * `max_send_buffer_size`), or the peer takes none of it for `sendTimeoutMs`
 * (Prosody's `send_timeout`), `onOverflow` is called once so the stream can
 * be closed. Code that sends much at once (offline messages, later archive
 * pages) paces itself on `flush()` so as not to trip the cap. Each write may carry an `item` (the stanza it was): items that
 * never reached the kernel are handed to `onClose`, so the stanzas they were
 * can go where stanzas for an unavailable resource go.
 *
 * Input: reading pauses while the session asks (`hold`), and while the
 * inbound rate limit (Prosody's mod_limits, a token bucket) has no bytes
 * left: a chunk is passed on only as far as the bucket allows, the rest
 * waits (at most one chunk).
 *
 * @example
 * ```ts
 * const conn = new Connection(socket, false, { maxSendBuffer: 1 << 20 });
 * conn.onData = (bytes) => parser.feed(bytes);
 * conn.onClose = (unsent) => bounce(unsent);
 * conn.write("<stream:stream ...>");
 * ```
 * @module
 */
import type { Socket } from "node:net";
import {
  connect as tlsConnect,
  type DetailedPeerCertificate,
  type SecureContext,
  TLSSocket,
} from "node:tls";
import { unrefTimeout } from "../timers.ts";

export interface ConnectionOptions {
  /** Most bytes waiting to be written before `onOverflow`; default 1 MiB. */
  maxSendBuffer?: number;
  /** Inbound limit, as mod_limits: bytes per second, and seconds of burst. */
  rate?: { bytesPerSecond: number; burstSeconds: number };
  /** How long `close()` waits for the peer before dropping the socket (ms); default 5 s. */
  closeTimeoutMs?: number;
  /**
   * How long output may wait with no byte taken by the peer before the
   * connection counts as stuck and `onOverflow` is called (ms; Prosody's
   * `send_timeout`); default 180 s.
   */
  sendTimeoutMs?: number;
  /** The transport cannot be upgraded to TLS in place (a WebSocket): no STARTTLS. */
  noStartTls?: boolean;
}

/**
 * The peer's address as logs and limits want it: an IPv4 client on a
 * dual-stack socket shows as `::ffff:a.b.c.d`, which is `a.b.c.d`.
 */
export function clientAddress(socket: Socket): string {
  return plainAddress(socket.remoteAddress ?? "");
}

/** `::ffff:a.b.c.d` (an IPv4 client on a dual-stack socket) as `a.b.c.d`; others as they are. */
export function plainAddress(ip: string): string {
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}

/**
 * What per-address limits count by: an IPv4 address, or an IPv6 address's
 * /64 prefix (one subscriber's network: anyone given a /64 has 2^64
 * addresses to spread over).
 *
 * @example
 * ```ts
 * addressGroup("2001:db8::1"); // "2001:db8:0:0::/64"
 * addressGroup("192.0.2.7");   // "192.0.2.7"
 * ```
 */
export function addressGroup(ip: string): string {
  if (!ip.includes(":")) return ip;
  const [head, tail = ""] = ip.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = ip.includes("::")
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "").toLowerCase()).join(":") +
    "::/64";
}

/** Most bytes a corked connection holds back before it sends them anyway. */
const CORK_LIMIT = 64 * 1024;

/** Why reading is paused: bits, so each reason pauses and resumes independently. */
const HELD = 1, THROTTLED = 2, STOPPED = 4, SUSPENDED = 8;

export class Connection {
  /** The socket read and written: the TCP socket, or the TLS socket over it. */
  socket: Socket;
  /** The TCP socket underneath (the same as `socket` until TLS). */
  private raw: Socket;
  secure: boolean;
  /** Whether STARTTLS can upgrade it (not over a WebSocket). */
  readonly canStartTls: boolean;
  readonly ip: string;
  /** What per-address limits count by (the /64 for IPv6). */
  readonly ipGroup: string;
  closed = false;
  /** Called with each chunk of bytes read. */
  onData: (chunk: Uint8Array) => void = () => {};
  /** Called once when the socket is gone, with the items of writes that never got out. */
  onClose: (unsent: unknown[]) => void = () => {};
  /** Called once when the output waiting to be written passes the cap. */
  onOverflow: () => void = () => {};
  /** Called when `onData` throws (a bug): the caller logs it and closes the stream. */
  onError: (error: unknown) => void = () => {};

  private maxSendBuffer: number;
  private closeTimeoutMs: number;
  private sendTimeoutMs: number;
  private stallTimer = 0;
  private doneAtCheck = 0;
  private paused = 0;
  private overflowed = false;
  /** Open {@link cork} calls (the socket itself is corked once while any is open). */
  private corks = 0;
  /** Items of writes whose callback has not come yet, in write order. */
  private inflight: unknown[] = [];
  /** Items of writes that failed. */
  private lost: unknown[] = [];
  private writes = 0;
  private done = 0;
  /** A write failed: what follows cannot be known to have reached the peer. */
  private failed = false;
  private flushWaiters: Array<{ upTo: number; resolve: (ok: boolean) => void }> = [];
  // Token bucket of the inbound rate limit.
  private rate: { bytesPerSecond: number; capacity: number } | undefined;
  private tokens = 0;
  private refilledAt = 0;
  private throttleTimer = 0;
  /** Bytes read but not yet passed on, waiting for the bucket to refill. */
  private waiting: Uint8Array | undefined;
  /** Bumped when TLS starts: bytes read before then belong to the plaintext layer. */
  private layer = 0;

  constructor(socket: Socket, secure: boolean, opts: ConnectionOptions = {}) {
    this.socket = socket;
    this.raw = socket;
    this.secure = secure;
    this.ip = clientAddress(socket);
    this.ipGroup = addressGroup(this.ip);
    this.maxSendBuffer = opts.maxSendBuffer ?? 1 << 20;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 5000;
    this.sendTimeoutMs = opts.sendTimeoutMs ?? 180_000;
    this.canStartTls = !opts.noStartTls;
    this.setRate(opts.rate);
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Uint8Array) => this.read(chunk));
    socket.on("error", () => {}); // followed by "close", handled there
    socket.on("close", () => this.gone());
  }

  private read(chunk: Uint8Array): void {
    if (this.paused & STOPPED) return;
    if (this.rate) return this.throttle(chunk);
    this.deliver(chunk);
  }

  private deliver(chunk: Uint8Array): void {
    try {
      this.onData(chunk);
    } catch (e) {
      this.onError(e);
    }
  }

  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.throttleTimer);
    clearTimeout(this.graceTimer);
    clearTimeout(this.stallTimer);
    const unsent = this.lost;
    for (const item of this.inflight) if (item !== undefined) unsent.push(item);
    this.inflight = [];
    this.lost = [];
    for (const w of this.flushWaiters.splice(0)) w.resolve(false);
    this.onClose(unsent);
  }

  /** Called by the socket for each write, in order, once it reached the kernel or failed. */
  private written = (error?: Error | null): void => {
    const item = this.inflight.shift();
    this.done++;
    if (error) {
      this.failed = true;
      if (item !== undefined) this.lost.push(item);
      for (const w of this.flushWaiters.splice(0)) w.resolve(false);
      return;
    }
    while (this.flushWaiters.length && this.flushWaiters[0].upTo <= this.done) {
      this.flushWaiters.shift()!.resolve(true);
    }
  };

  /**
   * Writes text; `item` (e.g. the stanza) comes back through `onClose` if it
   * never gets out. Returns false when the connection is closed.
   */
  write(data: string, item?: unknown): boolean {
    if (this.closed || this.socket.destroyed) return false;
    this.inflight.push(item);
    this.writes++;
    this.socket.write(data, this.written);
    // A long burst while corked goes out in pieces, never piling up past the cap.
    if (this.corks > 0 && this.socket.writableLength > CORK_LIMIT) {
      this.socket.uncork();
      this.socket.cork();
    }
    if (!this.overflowed && this.socket.writableLength > this.maxSendBuffer) this.overflow();
    else if (this.stallTimer === 0) this.watchStall();
    return true;
  }

  private overflow(): void {
    if (this.overflowed) return;
    this.overflowed = true;
    this.onOverflow();
  }

  /** While output waits, checks every send timeout that the peer took some of it. */
  private watchStall(): void {
    this.doneAtCheck = this.done;
    this.stallTimer = unrefTimeout(() => {
      this.stallTimer = 0;
      if (this.closed || this.done === this.writes) return; // all written: nothing waits
      if (this.done === this.doneAtCheck) return this.overflow(); // no progress at all
      this.watchStall();
    }, this.sendTimeoutMs);
  }

  /**
   * Holds writes back until {@link uncork}, which sends them in one go (one
   * system call instead of one each): for a burst to one client, such as
   * the occupants' presences and the history of a room being joined.
   */
  cork(): void {
    // Counted here, the socket corked once: overlapping bursts nest, and the
    // socket's own count would keep the cork limit above from flushing.
    if (this.closed || this.corks++ > 0) return;
    this.socket.cork();
  }

  uncork(): void {
    if (this.corks === 0) return; // not corked (an uncork too many must not undo another's)
    if (--this.corks === 0) this.socket.uncork();
  }

  /** Bytes written but not yet taken by the kernel. */
  get buffered(): number {
    return this.socket.writableLength;
  }

  /** Resolves true once everything written so far reached the kernel; false if the socket died first. */
  flush(): Promise<boolean> {
    if (this.closed || this.failed) return Promise.resolve(false);
    if (this.done === this.writes) return Promise.resolve(true);
    return new Promise((resolve) => this.flushWaiters.push({ upTo: this.writes, resolve }));
  }

  /** Pauses or resumes reading for the session (e.g. while a stanza is handled). */
  hold(on: boolean): void {
    this.setPaused(HELD, on);
  }

  /** Pauses or resumes reading for the server (while its configuration is reloaded). */
  suspend(on: boolean): void {
    this.setPaused(SUSPENDED, on);
  }

  private setPaused(reason: number, on: boolean): void {
    const before = this.paused;
    this.paused = on ? before | reason : before & ~reason;
    if (before === 0 && this.paused !== 0) this.readFromPeer(false);
    else if (before !== 0 && this.paused === 0 && !this.closed) this.readFromPeer(true);
  }

  /**
   * Starts or stops reading the peer. Under TLS, pausing the TLS socket does
   * not stop the TCP socket underneath from reading (the peer could go on
   * sending, and the bytes would pile up here), and pausing that socket does
   * not come back from resume(): its handle is stopped and started instead.
   */
  private readFromPeer(on: boolean): void {
    if (this.raw === this.socket) {
      if (on) this.socket.resume();
      else this.socket.pause();
      return;
    }
    // deno-lint-ignore no-explicit-any
    const handle = (this.raw as any)._handle as
      | { readStart(): unknown; readStop(): unknown }
      | undefined;
    if (on) handle?.readStart();
    else handle?.readStop();
  }

  // --- inbound rate limit ------------------------------------------------------

  /** Sets (or with undefined, lifts) the inbound rate limit. */
  setRate(rate: { bytesPerSecond: number; burstSeconds: number } | undefined): void {
    clearTimeout(this.throttleTimer);
    const waiting = this.waiting;
    this.waiting = undefined;
    if (!rate || !(rate.bytesPerSecond > 0) || rate.bytesPerSecond === Infinity) {
      this.rate = undefined;
      this.setPaused(THROTTLED, false);
      if (waiting) this.deliver(waiting);
      return;
    }
    const capacity = Math.max(1, rate.bytesPerSecond * Math.max(rate.burstSeconds, 0.001));
    this.rate = { bytesPerSecond: rate.bytesPerSecond, capacity };
    this.tokens = capacity;
    this.refilledAt = performance.now();
    this.setPaused(THROTTLED, false);
    if (waiting) this.throttle(waiting);
  }

  private refill(): void {
    const rate = this.rate!;
    const now = performance.now();
    this.tokens = Math.min(
      rate.capacity,
      this.tokens + (now - this.refilledAt) * rate.bytesPerSecond / 1000,
    );
    this.refilledAt = now;
  }

  /**
   * Passes on as many bytes as the bucket holds; the rest of the chunk waits
   * (reading paused) until the bucket has refilled enough.
   */
  private throttle(chunk: Uint8Array): void {
    this.refill();
    const now = Math.min(chunk.length, Math.max(0, Math.floor(this.tokens)));
    this.tokens -= now;
    if (now === chunk.length) return this.deliver(chunk);
    const layer = this.layer;
    if (now > 0) this.deliver(chunk.subarray(0, now));
    if (layer !== this.layer) return; // STARTTLS began: the rest was sent in plaintext
    this.waiting = chunk.subarray(now);
    this.setPaused(THROTTLED, true);
    this.scheduleRelease();
  }

  private scheduleRelease(): void {
    const rate = this.rate!;
    const want = Math.min(this.waiting!.length, rate.capacity) - this.tokens;
    const ms = Math.max(1, Math.ceil(want * 1000 / rate.bytesPerSecond));
    clearTimeout(this.throttleTimer);
    this.throttleTimer = unrefTimeout(() => this.release(), ms);
  }

  private release(): void {
    const waiting = this.waiting;
    if (this.closed || !waiting || !this.rate) return;
    this.waiting = undefined;
    this.refill();
    const now = Math.min(waiting.length, Math.max(0, Math.floor(this.tokens)));
    this.tokens -= now;
    const layer = this.layer;
    if (now > 0) this.deliver(waiting.subarray(0, now));
    if (layer !== this.layer) return; // STARTTLS began: the rest was sent in plaintext
    if (now < waiting.length) {
      this.waiting = waiting.subarray(now);
      return this.scheduleRelease();
    }
    this.setPaused(THROTTLED, false);
  }

  /** Reads nothing more (after a fatal stream error: nothing more will be parsed). */
  stopReading(): void {
    this.waiting = undefined;
    clearTimeout(this.throttleTimer);
    this.setPaused(STOPPED, true);
  }

  // --- TLS -----------------------------------------------------------------------

  /**
   * STARTTLS: hands the plain socket to a server-side TLS socket. Bytes read
   * from now on are the decrypted stream.
   */
  startTls(
    secureContext: SecureContext,
    /** Picks the context for the name the client asked for (SNI), if any. */
    contextFor?: (servername: string) => SecureContext | undefined,
    /** ALPN protocols to accept (XEP-0368: "xmpp-client"). */
    alpn?: string[],
    /** Asks the peer for its certificate (a server's, on server-to-server streams). */
    requestCert = false,
  ): void {
    const plain = this.socket;
    // Bytes the rate limit held back were sent before TLS: they must never be
    // read as if they came through it (plaintext injection, CVE-2011-0411).
    this.layer++;
    this.waiting = undefined;
    clearTimeout(this.throttleTimer);
    if (this.rate) this.tokens = this.rate.capacity;
    this.paused &= ~THROTTLED;
    // Stop reading first: a read already in flight would swallow the client's TLS hello.
    plain.pause();
    // What a cork held (the `<proceed/>`) goes out in the clear; the cork moves to TLS.
    if (this.corks > 0) plain.uncork();
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    const SNICallback = contextFor &&
      ((name: string, cb: (err: Error | null, ctx?: SecureContext) => void) =>
        cb(null, contextFor(name) ?? secureContext));
    const tls = new TLSSocket(plain, {
      isServer: true,
      secureContext,
      SNICallback,
      ALPNProtocols: alpn,
      // Checked by the caller's policy (s2s), never refused by TLS itself.
      ...(requestCert ? { requestCert: true, rejectUnauthorized: false } : {}),
    });
    this.socket = tls;
    if (this.corks > 0) tls.cork();
    this.secure = true;
    this.attach(tls);
    tls.on("error", () => tls.destroy());
    if (this.paused !== 0) this.readFromPeer(false);
  }

  /**
   * TLS as the initiating side (an outgoing server-to-server stream, after
   * STARTTLS or from the first byte): the plain socket becomes a client
   * TLS socket to `servername`, presenting `secureContext`'s certificate
   * when given; resolves once the handshake is done (false if it failed).
   * The peer's certificate is not judged here: see `peerCertificates()`.
   */
  startTlsClient(
    servername: string,
    opts: { secureContext?: SecureContext; alpn?: string[] } = {},
  ): Promise<boolean> {
    const plain = this.socket;
    this.layer++;
    plain.pause();
    if (this.corks > 0) plain.uncork();
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    const tls = tlsConnect({
      socket: plain,
      servername,
      rejectUnauthorized: false,
      ...(opts.secureContext ? { secureContext: opts.secureContext } : {}),
      ...(opts.alpn ? { ALPNProtocols: opts.alpn } : {}),
    });
    this.socket = tls;
    this.secure = true;
    this.attach(tls);
    tls.on("error", () => tls.destroy());
    return new Promise((resolve) => {
      tls.once("secureConnect", () => resolve(true));
      tls.once("close", () => resolve(false));
    });
  }

  /** The peer's certificate and the chain it sent (DER, its own first); empty when none. */
  peerCertificates(): Uint8Array[] {
    const socket = this.socket as TLSSocket;
    if (!this.secure || typeof socket.getPeerCertificate !== "function") return [];
    const out: Uint8Array[] = [];
    let cert = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
    while (cert?.raw && out.length < 8) {
      out.push(new Uint8Array(cert.raw));
      if (cert.issuerCertificate === cert) break; // (a self-signed root points at itself)
      cert = cert.issuerCertificate;
    }
    return out;
  }

  /** The ALPN protocol the client and the server agreed on, if any. */
  get alpnProtocol(): string | undefined {
    const p = (this.socket as TLSSocket).alpnProtocol;
    return typeof p === "string" ? p : undefined;
  }

  // --- closing -------------------------------------------------------------------

  private ending = false;
  private graceTimer = 0;

  /** Ends the connection after pending writes, and destroys it if the peer lingers. */
  close(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    clearTimeout(this.graceTimer);
    const socket = this.socket;
    socket.end();
    const t = unrefTimeout(() => socket.destroy(), this.closeTimeoutMs);
    socket.once("close", () => clearTimeout(t));
  }

  /**
   * Closes once the peer has had `ms` to close its side first (RFC 6120 §4.4:
   * wait for the other party's closing tag); `close()` cuts the wait short.
   */
  closeAfter(ms: number): void {
    if (this.closed || this.ending || this.graceTimer) return;
    this.graceTimer = unrefTimeout(() => this.close(), ms);
  }

  /** Drops the connection at once; unwritten output comes back through `onClose`. */
  destroy(): void {
    this.socket.destroy();
  }
}
