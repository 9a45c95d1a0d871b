/**
 * A bare BOSH client for tests (XEP-0124/0206 by hand, with fetch): it
 * keeps the sid and the next rid, and gives the raw `<body/>` answers so a
 * test can check what is on the wire.
 *
 * @example
 * ```ts
 * const c = new BoshClient(`http://127.0.0.1:${t.httpPort}/http-bind`);
 * const first = await c.create("localhost");          // has <stream:features>
 * await c.login("juliet", "pw");                       // SASL PLAIN, restart, bind
 * const answer = await c.send("<presence xmlns='jabber:client'/>");
 * ```
 * @module
 */
export const BOSH_NS = "http://jabber.org/protocol/httpbind";

export class BoshClient {
  sid = "";
  rid = 1000 + Math.floor(Math.random() * 1e6);
  jid = "";

  constructor(readonly url: string) {}

  /** POSTs a raw text; the status and the answer's text. */
  async post(text: string): Promise<{ status: number; text: string }> {
    const r = await fetch(this.url, {
      method: "POST",
      body: text,
      headers: { "content-type": "text/xml; charset=utf-8" },
    });
    return { status: r.status, text: await r.text() };
  }

  /** Sends a request with the next rid (or `rid`), these attributes and this content. */
  async send(
    payload = "",
    attrs: Record<string, string> = {},
    rid = this.rid++,
  ): Promise<string> {
    const all: Record<string, string> = { rid: String(rid), sid: this.sid, ...attrs };
    const a = Object.entries(all).map(([k, v]) => ` ${k}='${v}'`).join("");
    const r = await this.post(
      `<body xmlns='${BOSH_NS}' xmlns:xmpp='urn:xmpp:xbosh'${a}>${payload}</body>`,
    );
    return r.text;
  }

  /** Creates a session (hold 1, wait `wait`); the first answer. */
  async create(to: string, wait = 3, hold = 1): Promise<string> {
    const rid = this.rid++;
    const r = await this.post(
      `<body xmlns='${BOSH_NS}' xmlns:xmpp='urn:xmpp:xbosh' rid='${rid}' to='${to}' ` +
        `wait='${wait}' hold='${hold}' ver='1.6' xml:lang='en' xmpp:version='1.0'/>`,
    );
    const sid = /\ssid=['"]([^'"]+)['"]/.exec(r.text)?.[1];
    if (!sid) throw new Error(`no session: ${r.status} ${r.text}`);
    this.sid = sid;
    return r.text;
  }

  /** Sends requests (empty ones to collect) until an answer matches; returns it. */
  async until(re: RegExp, payload = "", tries = 10): Promise<string> {
    let text = await this.send(payload);
    for (let i = 0; i < tries && !re.test(text); i++) {
      if (/type=['"]terminate['"]/.test(text)) break;
      text = await this.send();
    }
    if (!re.test(text)) throw new Error(`no answer matching ${re}: ${text}`);
    return text;
  }

  /** SASL PLAIN, the restart, resource binding: the session is ready for stanzas. */
  async login(user: string, password: string, host = "localhost"): Promise<void> {
    const auth = btoa(`\0${user}\0${password}`);
    await this.until(
      /<success/,
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${auth}</auth>`,
    );
    // The restart's answer carries the new stream's features.
    let features = await this.send("", { "xmpp:restart": "true", to: host });
    if (!/<bind/.test(features)) features = await this.until(/<bind/);
    const bound = await this.until(
      /<jid>/,
      "<iq xmlns='jabber:client' type='set' id='bind1'>" +
        "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bosh</resource></bind></iq>",
    );
    this.jid = /<jid>([^<]+)<\/jid>/.exec(bound)![1];
  }
}
