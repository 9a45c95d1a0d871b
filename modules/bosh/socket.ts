/**
 * A BOSH session seen as a socket, so that a c2s `Connection` serves it as
 * it serves a TCP client (rate limits, the send buffer cap, stream
 * management, closing): request payloads come out as stream text
 * (`feed`), what c2s writes goes to the session (`sink`), whose callback
 * waits while the client is not collecting, so unread output shows as a
 * growing send buffer, as with a TCP client that does not read.
 *
 * @example
 * ```ts
 * const socket = new BoshSocket(ip, (text, done) => session.output(text, done), () => session.closed());
 * c2s.accept(socket, { secure: true, noStartTls: true });
 * socket.feed("<stream:stream to='example.com' …>");
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";

export type Sink = (text: string, done: (e?: Error | null) => void) => void;

export class BoshSocket extends Duplex {
  /** As net.Socket has it (Connection reads it for limits and logs). */
  readonly remoteAddress: string;

  constructor(remoteAddress: string, private sink: Sink, private onClose: () => void) {
    super({ decodeStrings: false, allowHalfOpen: false });
    this.remoteAddress = remoteAddress;
  }

  /** Text from the client, for the c2s parser. */
  feed(text: string): void {
    if (text !== "" && !this.destroyed) this.push(Buffer.from(text));
  }

  /** Bytes the client sent that c2s has not read yet (reading paused). */
  get unread(): number {
    return this.readableLength;
  }

  override _read(): void {
    // Input is pushed as requests come; the c2s Connection pauses and resumes reading.
  }

  override _write(chunk: Buffer | string, _enc: string, done: (e?: Error | null) => void): void {
    this.sink(String(chunk), done);
  }

  override _final(done: (e?: Error | null) => void): void {
    this.onClose();
    done();
  }

  override _destroy(e: Error | null, done: (e?: Error | null) => void): void {
    this.onClose();
    done(e);
  }

  /** As net.Socket has it (a no-op here). */
  setNoDelay(): this {
    return this;
  }
}
