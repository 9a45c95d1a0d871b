/**
 * A WebSocket seen as a socket, so that a c2s `Connection` can serve it
 * with everything it does for TCP clients (rate limits, the send buffer
 * cap and `send_timeout`, stream management, closing): the client's frames
 * come out as stream text (`fromClient`), what is written goes out as
 * frames (`toClient`), and writes wait while the WebSocket's own buffer is
 * full, so a client that does not read shows as output piling up.
 *
 * @example
 * ```ts
 * const { socket: ws, response } = Deno.upgradeWebSocket(request, { protocol: "xmpp" });
 * const socket = new WebSocketSocket(ws, clientIp, { maxFrame: 262144, log });
 * c2s.accept(socket, { secure: false, noStartTls: true });
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import type { Logger } from "../../core/log.ts";
import { fromClient, isClose, toClient } from "./framing.ts";

/** Bytes the WebSocket may hold before writes wait for it to drain. */
const HIGH_WATER = 64 * 1024;
/** Input read but not yet taken (reading paused: rate limit, a stanza being handled). */
const MAX_UNREAD = 1 << 20;

/** RFC 6455 close codes used here. */
export const CLOSE_NORMAL = 1000;
export const CLOSE_UNSUPPORTED = 1003;
export const CLOSE_POLICY = 1008;
export const CLOSE_TOO_BIG = 1009;

export class WebSocketSocket extends Duplex {
  /** As net.Socket has it (Connection reads it for limits and logs). */
  readonly remoteAddress: string;
  /** The client sent `<close/>`: nothing it sends after counts. */
  private closedByClient = false;

  constructor(
    private ws: WebSocket,
    remoteAddress: string,
    private opts: { maxFrame: number; log: Logger },
  ) {
    super({ decodeStrings: false, allowHalfOpen: false });
    this.remoteAddress = remoteAddress;
    ws.onmessage = (e) => this.frame(e.data);
    ws.onclose = () => {
      this.push(null);
      this.destroy();
    };
    ws.onerror = () => {};
  }

  private frame(data: unknown) {
    if (typeof data !== "string") {
      return this.ws.close(CLOSE_UNSUPPORTED, "XMPP frames are text");
    }
    if (data.length > this.opts.maxFrame) {
      return this.ws.close(CLOSE_TOO_BIG, "Frame too large");
    }
    if (this.closedByClient) return; // (RFC 7395 §3.6: nothing after <close/>)
    // A WebSocket has no flow control of its own: input beyond what waits is refused.
    if (this.readableLength > MAX_UNREAD) {
      return this.ws.close(CLOSE_POLICY, "Too much input waiting to be read");
    }
    if (isClose(data)) this.closedByClient = true;
    this.push(Buffer.from(fromClient(data)));
  }

  override _read(): void {
    // Frames are pushed as they come; pausing is left to the caller's reading (see below).
  }

  override _write(chunk: Buffer | string, _enc: string, done: (e?: Error | null) => void): void {
    this.send(String(chunk), done);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer | string }>,
    done: (e?: Error | null) => void,
  ): void {
    let i = 0;
    const next = (e?: Error | null) => {
      if (e || i === chunks.length) return done(e);
      this.send(String(chunks[i++].chunk), next);
    };
    next();
  }

  private send(text: string, done: (e?: Error | null) => void) {
    if (this.ws.readyState !== WebSocket.OPEN) return done(new Error("WebSocket closed"));
    for (const frame of toClient(text)) this.ws.send(frame);
    // A client that does not read: the next write waits (and the output piles up above us).
    const wait = () => {
      if (this.ws.readyState !== WebSocket.OPEN) return done(new Error("WebSocket closed"));
      if (this.ws.bufferedAmount <= HIGH_WATER) return done();
      setTimeout(wait, 10);
    };
    wait();
  }

  override _final(done: (e?: Error | null) => void): void {
    this.closeWs(CLOSE_NORMAL);
    done();
  }

  override _destroy(e: Error | null, done: (e?: Error | null) => void): void {
    this.closeWs(CLOSE_NORMAL);
    done(e);
  }

  private closeWs(code: number) {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      try {
        this.ws.close(code);
      } catch { /* closing already */ }
    }
  }

  /** As net.Socket has it (a no-op here). */
  setNoDelay(): this {
    return this;
  }
}
