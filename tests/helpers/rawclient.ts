/**
 * A raw XMPP client on a TCP socket, for tests that send exactly the bytes
 * they mean (bad input included) and read what comes back.
 *
 * @example
 * ```ts
 * const c = await RawClient.connect(port);
 * c.send(streamHeader("localhost"));
 * await c.waitFor(/<\/stream:features>/);
 * ```
 * @module
 */
import { connect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";

export function streamHeader(to = "localhost"): string {
  return `<?xml version='1.0'?><stream:stream to='${to}' version='1.0' ` +
    `xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`;
}

export class RawClient {
  /** Everything received so far. */
  received = "";
  closed = false;
  private answered = false;
  private waiters: Array<() => void> = [];
  private decoder = new TextDecoder();

  private constructor(public socket: Socket | TLSSocket) {
    this.listen(socket);
  }

  private listen(socket: Socket | TLSSocket) {
    socket.on("data", (d: Uint8Array) => {
      this.received += this.decoder.decode(d, { stream: true });
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host }, () => resolve(new RawClient(s)));
      s.once("error", reject);
    });
  }

  /** Connects with direct TLS (XEP-0368), accepting the self-signed certificate. */
  static connectTls(port: number, host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect(
        { port, host, rejectUnauthorized: false, servername: "localhost" },
        () => resolve(new RawClient(s)),
      );
      s.once("error", reject);
    });
  }

  /** Upgrades this connection with TLS (after `<proceed/>`). */
  startTls(): Promise<void> {
    return new Promise((resolve, reject) => {
      const plain = this.socket;
      plain.removeAllListeners("data");
      plain.removeAllListeners("close");
      const s = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: "localhost" });
      s.once("secureConnect", () => resolve());
      s.once("error", reject);
      this.socket = s;
      this.received = "";
      this.listen(s);
    });
  }

  send(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** Waits until the received text matches; returns the match. Rejects after `ms`. */
  async waitFor(pattern: RegExp, ms = 5000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    while (true) {
      const m = this.received.match(pattern);
      if (m) return m;
      if (this.closed) {
        throw new Error(`connection closed before ${pattern}; got: ${this.tail()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern}; got: ${this.tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /**
   * Waits until the connection is closed. Once the server has sent
   * `</stream:stream>`, answers with its own and ends the socket, as clients
   * do (RFC 6120 §4.4; the server waits `c2s_close_timeout` for that),
   * unless `answer` is false.
   */
  async waitClosed(ms = 5000, answer = true): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (answer && !this.answered && this.received.includes("</stream:stream>")) {
        this.answered = true;
        this.socket.end("</stream:stream>");
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open; got: ${this.tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** What was received, shortened for an error message. */
  private tail(): string {
    const r = this.received;
    return r.length <= 2000 ? r : `…(${r.length - 2000} characters)…${r.slice(-2000)}`;
  }

  /** Forgets what was received so far (to match only new output). */
  clear(): void {
    this.received = "";
  }

  close(): void {
    this.socket.destroy();
  }

  /**
   * Authenticates with SASL PLAIN (the stream must allow it) and restarts
   * the stream; returns the new stream's features.
   */
  async authenticate(user: string, password: string, host = "localhost"): Promise<string> {
    this.send(streamHeader(host));
    await this.waitFor(/<\/stream:features>/);
    this.clear();
    const auth = btoa(`\0${user}\0${password}`);
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${auth}</auth>`);
    await this.waitFor(/<success/);
    this.clear();
    this.send(streamHeader(host));
    const features = (await this.waitFor(/<stream:features>[^]*<\/stream:features>/))[0];
    this.clear();
    return features;
  }

  /** Logs in with SASL PLAIN (stream must allow it) and binds `resource` (on `host`). */
  async login(
    user: string,
    password: string,
    resource = "test",
    host = "localhost",
  ): Promise<string> {
    await this.authenticate(user, password, host);
    this.send(
      `<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>` +
        `<resource>${resource}</resource></bind></iq>`,
    );
    const m = await this.waitFor(/<jid>([^<]+)<\/jid>/);
    this.clear();
    return m[1];
  }
}
