/**
 * One client connection: a `node:net` socket, upgraded in place to TLS for
 * STARTTLS or wrapped from the start for direct TLS (XEP-0368).
 *
 * Writes are synchronous enqueues on the socket, so output order is call
 * order. When the kernel buffer backs up, reading pauses until it drains.
 *
 * @example
 * ```ts
 * const conn = new Connection(socket, false);
 * conn.onData = (bytes) => parser.feed(bytes);
 * conn.write("<stream:stream ...>");
 * ```
 * @module
 */
import type { Socket } from "node:net";
import { type SecureContext, TLSSocket } from "node:tls";
import { unrefTimeout } from "../timers.ts";

export class Connection {
  socket: Socket;
  secure: boolean;
  readonly ip: string;
  closed = false;
  /** Called with each chunk of bytes read. */
  onData: (chunk: Uint8Array) => void = () => {};
  /** Called once when the socket is gone, for whatever reason. */
  onClose: (error?: Error) => void = () => {};
  private paused = 0;

  constructor(socket: Socket, secure: boolean) {
    this.socket = socket;
    this.secure = secure;
    this.ip = socket.remoteAddress ?? "";
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Uint8Array) => this.onData(chunk));
    socket.on("error", () => {}); // followed by "close", handled there
    socket.on("close", () => this.gone());
    socket.on("drain", () => this.resume());
  }

  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }

  /** Writes text; returns false when the connection is closed. */
  write(data: string): boolean {
    if (this.closed) return false;
    if (!this.socket.write(data)) this.pause();
    return true;
  }

  /** Stops reading (nested: each pause needs one resume). */
  pause(): void {
    if (this.paused++ === 0) this.socket.pause();
  }

  resume(): void {
    if (this.paused > 0 && --this.paused === 0) this.socket.resume();
  }

  /**
   * STARTTLS: hands the plain socket to a server-side TLS socket. Bytes read
   * from now on are the decrypted stream.
   */
  startTls(
    secureContext: SecureContext,
    /** Picks the context for the name the client asked for (SNI), if any. */
    contextFor?: (servername: string) => SecureContext | undefined,
  ): void {
    const plain = this.socket;
    // Stop reading first: a read already in flight would swallow the client's TLS hello.
    plain.pause();
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    plain.removeAllListeners("drain");
    const SNICallback = contextFor &&
      ((name: string, cb: (err: Error | null, ctx?: SecureContext) => void) =>
        cb(null, contextFor(name) ?? secureContext));
    const tls = new TLSSocket(plain, { isServer: true, secureContext, SNICallback });
    this.socket = tls;
    this.secure = true;
    this.attach(tls);
    tls.on("error", () => tls.destroy());
  }

  /** Ends the connection after pending writes, and destroys it if the peer lingers. */
  close(): void {
    if (this.closed) return;
    const socket = this.socket;
    socket.end();
    const t = unrefTimeout(() => socket.destroy(), 2000);
    socket.once("close", () => clearTimeout(t));
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.socket.destroy();
  }
}
