/**
 * A logged-in `npm:@xmpp/client` for end-to-end tests, collecting what it
 * receives so a test can wait for a stanza matching a predicate.
 *
 * @example
 * ```ts
 * const romeo = await connectXmpp(t.port, "romeo", "pw", "orchard");
 * romeo.send(xml("presence", { to: "juliet@localhost", type: "subscribe" }));
 * await romeo.waitFor((s) => s.is("iq") && s.attrs.type === "set");
 * await romeo.stop();
 * ```
 * @module
 */
import { client, xml } from "@xmpp/client";

// Test servers use a self-signed certificate.
Deno.env.set("NODE_TLS_REJECT_UNAUTHORIZED", "0");

// deno-lint-ignore no-explicit-any
export type XmlElement = any;

export interface TestXmpp {
  // deno-lint-ignore no-explicit-any
  xmpp: any;
  jid: string;
  received: XmlElement[];
  send(el: XmlElement): Promise<void>;
  /** Waits for (and returns) the first received stanza matching; rejects after `ms`. */
  waitFor(match: (s: XmlElement) => boolean, ms?: number): Promise<XmlElement>;
  /** The roster items of a roster get (marks the session interested). */
  roster(): Promise<XmlElement[]>;
  stop(): Promise<void>;
}

export { xml };

export async function connectXmpp(
  port: number,
  username: string,
  password: string,
  resource = "test",
  /** Another service URL, e.g. "ws://127.0.0.1:5280/xmpp-websocket" (WebSocket). */
  service = `xmpp://127.0.0.1:${port}`,
): Promise<TestXmpp> {
  const xmpp = client({
    service,
    domain: "localhost",
    resource,
    username,
    password,
  });
  xmpp.reconnect.stop();
  const received: XmlElement[] = [];
  const waiters: Array<() => void> = [];
  xmpp.on("stanza", (s: XmlElement) => {
    received.push(s);
    for (const w of waiters.splice(0)) w();
  });
  const jid = await new Promise<string>((resolve, reject) => {
    xmpp.on("error", reject);
    xmpp.on("online", (a: { toString(): string }) => resolve(a.toString()));
    xmpp.start().catch(reject);
  });
  return {
    xmpp,
    jid,
    received,
    send: (el) => xmpp.send(el),
    async waitFor(match, ms = 5000) {
      const deadline = Date.now() + ms;
      let seen = 0;
      while (true) {
        for (; seen < received.length; seen++) {
          if (match(received[seen])) return received.splice(seen, 1)[0];
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new Error(
            `${jid}: no matching stanza; got ${received.map((s) => s.toString()).join("\n")}`,
          );
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
    async roster() {
      const result = await xmpp.iqCaller.request(
        xml("iq", { type: "get" }, xml("query", { xmlns: "jabber:iq:roster" })),
      );
      return result.getChild("query")?.getChildren("item") ?? [];
    },
    async stop() {
      await xmpp.stop().catch(() => {});
    },
  };
}
