/**
 * A raw server-to-server stream for tests that play a remote server: opens
 * a `jabber:server` stream (with the dialback prefix declared) and keeps
 * what came back.
 *
 * @example
 * ```ts
 * const p = await Peer.open(port, "evil.test", "b.test");
 * p.send("<db:result from='evil.test' to='b.test'>key</db:result>");
 * await p.until(/type='invalid'/);
 * ```
 * @module
 */
import { connect, type Socket } from "node:net";

/** The header a remote server opens its stream with. */
export const HEADER = (from: string, to: string) =>
  "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
  `xmlns:db='jabber:server:dialback' from='${from}' to='${to}' version='1.0'>`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw s2s stream to a server, with what came back. */
export class Peer {
  text = "";
  constructor(readonly socket: Socket) {
    socket.on("data", (d) => this.text += d.toString());
    socket.on("error", () => {});
  }
  /** Opens a stream and waits for the features (or the stream's end). */
  static async open(port: number, from: string, to: string): Promise<Peer> {
    const p = new Peer(connect(port, "127.0.0.1"));
    p.socket.write(HEADER(from, to));
    await p.until(/<\/stream:features>|<stream:features\/>|<\/stream:stream>/);
    return p;
  }
  send(s: string) {
    this.socket.write(s);
  }
  /** Whether what came back matches within `ms`. */
  async until(re: RegExp, ms = 10_000): Promise<boolean> {
    for (let t = 0; t < ms && !re.test(this.text); t += 20) await sleep(20);
    return re.test(this.text);
  }
  close() {
    this.socket.destroy();
  }
}
