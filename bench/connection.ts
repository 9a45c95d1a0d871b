/**
 * A minimal buffered client connection for the load generator: it sends
 * text and waits for a pattern in what the server sent, whatever the TCP
 * chunking. Plain `node:net`, upgradable to TLS in place (STARTTLS).
 * @module
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";

/** Where to connect: a loopback server, optionally from a chosen loopback source address. */
export interface Target {
  host: string;
  port: number;
  localAddress?: string;
}

/** Refuses anything that is not a 127.0.0.0/8 address: the generator only loads loopback. */
export function assertLoopback(address: string): void {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address)) {
    throw new Error(`only loopback (127.0.0.0/8) addresses may be used, not ${address}`);
  }
}

/** One client connection with a receive buffer. */
export class BenchConnection {
  /** Text received and not yet consumed by {@link waitFor}. */
  buffer = "";
  /** True once the socket has closed. */
  closed = false;
  /** The full JID the server bound for this session, once bound. */
  jid = "";
  /** When true, incoming text is dropped instead of buffered. */
  private discarding = false;
  /** When set, incoming text goes here instead of the buffer (see {@link onText}). */
  private textHandler: ((text: string) => void) | undefined;
  private socket: Socket | TLSSocket;
  private wake: (() => void) | undefined;
  private decoder = new TextDecoder();

  private constructor(socket: Socket) {
    this.socket = socket;
    this.listen(socket);
  }

  /** Opens a TCP connection to a loopback target. */
  static open(target: Target, timeoutMs: number): Promise<BenchConnection> {
    assertLoopback(target.host);
    if (target.localAddress) assertLoopback(target.localAddress);
    return new Promise((resolve, reject) => {
      const socket = netConnect({
        host: target.host,
        port: target.port,
        localAddress: target.localAddress,
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.setNoDelay(true); // as XMPP clients do: no Nagle delay on back-to-back stanzas
        resolve(new BenchConnection(socket));
      });
      socket.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  private listen(socket: Socket | TLSSocket) {
    socket.on("data", (chunk: Uint8Array) => {
      if (this.discarding) return;
      const text = this.decoder.decode(chunk, { stream: true });
      if (this.textHandler) this.textHandler(text);
      else this.buffer += text;
      this.notify();
    });
    socket.on("close", () => {
      this.closed = true;
      this.notify();
    });
    socket.on("error", () => {}); // "close" follows; waiters see it
  }

  /** Resolves on the next data or close, or after `ms`. */
  private nextEvent(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private notify() {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Sends text. */
  send(text: string): void {
    this.socket.write(text);
  }

  /**
   * Waits until `pattern` appears in the buffer, then consumes the buffer up
   * to the end of the match and returns the match. Throws on timeout, on a
   * stream error or SASL failure, or when the connection closes first.
   */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    const deadline = performance.now() + timeoutMs;
    while (true) {
      const m = pattern.exec(this.buffer);
      if (m) {
        this.buffer = this.buffer.slice(m.index + m[0].length);
        return m;
      }
      if (/<stream:error|<failure/.test(this.buffer)) {
        throw new Error(
          `server refused while waiting for ${pattern}: ${this.buffer.slice(0, 300)}`,
        );
      }
      if (this.closed) throw new Error(`closed while waiting for ${pattern}: ${this.buffer}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern}: ${this.buffer}`);
      await this.nextEvent(left);
    }
  }

  /**
   * Waits until `pattern` (the server's end of stream) appears or the
   * connection closes; throws when neither happens in time.
   */
  async waitForEnd(pattern: RegExp, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.closed && !pattern.test(this.buffer)) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`server did not close within ${timeoutMs} ms`);
      await this.nextEvent(left);
    }
  }

  /** Upgrades the connection to TLS (after `<proceed/>`), accepting any certificate. */
  startTls(timeoutMs: number): Promise<void> {
    const plain = this.socket;
    // Stop the plain socket's reads first: on Deno, a read already under way
    // when the TLS socket takes over can swallow the server's first TLS bytes.
    plain.pause();
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    this.buffer = "";
    this.decoder = new TextDecoder();
    return new Promise((resolve, reject) => {
      const secure = tlsConnect({
        socket: plain as Socket,
        rejectUnauthorized: false,
        servername: "localhost",
      });
      const timer = setTimeout(() => {
        secure.destroy();
        reject(new Error(`TLS handshake timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      secure.once("secureConnect", () => {
        clearTimeout(timer);
        resolve();
      });
      secure.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      this.socket = secure;
      this.listen(secure);
    });
  }

  /**
   * Sends text and resolves once the socket has taken it (at once, or after
   * its "drain" when the kernel buffer was full): a sender that awaits this
   * goes as fast as the server reads, and no faster. Rejects if it closes.
   */
  write(text: string): Promise<void> {
    if (this.socket.write(text)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", closed);
        resolve();
      };
      const closed = () => {
        this.socket.off("drain", done);
        reject(new Error("closed while writing"));
      };
      this.socket.once("drain", done);
      this.socket.once("close", closed);
    });
  }

  /** Stops reading the socket: what the server sends piles up in its buffers, then in the server. */
  pauseReading(): void {
    this.socket.pause();
  }

  /** Drops everything buffered (for idle sessions that ignore what arrives). */
  discardIncoming(): void {
    this.buffer = "";
    this.discarding = true;
  }

  /**
   * Hands everything received from now on to `handler`, chunk by chunk, as
   * it arrives (starting with what is still buffered); {@link waitFor} no
   * longer sees it. For measured phases that count stanzas as they come.
   */
  onText(handler: (text: string) => void): void {
    this.textHandler = handler;
    const rest = this.buffer;
    this.buffer = "";
    if (rest) handler(rest);
  }

  /**
   * Whether the server has closed this connection, seen from the kernel's
   * socket table without reading (a paused reader never sees the close):
   * the socket is in CLOSE-WAIT (the server's FIN arrived), or gone (reset).
   */
  async peerHasClosed(): Promise<boolean> {
    if (this.closed) return true;
    const local = this.socket.localPort, remote = this.socket.remotePort;
    if (local === undefined || remote === undefined) return true;
    const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, "0");
    const want = new RegExp(
      `^\\s*\\d+: [0-9A-F]+:${hex(local)} [0-9A-F]+:${hex(remote)} ([0-9A-F]{2})`,
      "m",
    );
    for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      const m = want.exec(await Deno.readTextFile(table).catch(() => ""));
      // 08 CLOSE_WAIT, 07 CLOSE; anything else (01 ESTABLISHED…) is still open.
      if (m) return m[1] === "08" || m[1] === "07";
    }
    return true;
  }

  /** Closes the socket at once. */
  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * The i-th client source address, cycling over 127.0.0.1–127.0.0.8 so that
 * many connections to one port do not run out of ephemeral ports.
 */
export function loopbackSource(i: number): string {
  return `127.0.0.${(i % 8) + 1}`;
}
