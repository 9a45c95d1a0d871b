/** XEP-0115 caps of local clients: asked once per ver, verified, cached server-wide. */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { parseXml } from "../../core/xml/parser.ts";
import type { Session } from "../../core/session.ts";
import type { CapsExports, CapsUpdatedEvent } from "../../modules/caps.ts";

const CONFIG = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  modules_enabled: ["roster", "saslauth", "disco", "caps"],
};

const NODE = "http://code.google.com/p/exodus";
const SIMPLE_VER = "QgayPKawpkPSDYmwT/WM94uAlu0=";
const SIMPLE = "<identity category='client' name='Exodus 0.9.1' type='pc'/>" +
  "<feature var='http://jabber.org/protocol/caps'/>" +
  "<feature var='http://jabber.org/protocol/disco#info'/>" +
  "<feature var='http://jabber.org/protocol/disco#items'/>" +
  "<feature var='http://jabber.org/protocol/muc'/>";
const SIMPLE_FEATURES = [
  "http://jabber.org/protocol/caps",
  "http://jabber.org/protocol/disco#info",
  "http://jabber.org/protocol/disco#items",
  "http://jabber.org/protocol/muc",
];

const PSI_NODE = "http://psi-im.org";
const COMPLEX_VER = "q07IKJEyjvHSyhy//CH0CxmKi8w=";
const COMPLEX = "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>" +
  "<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>" +
  "<feature var='http://jabber.org/protocol/caps'/>" +
  "<feature var='http://jabber.org/protocol/disco#info'/>" +
  "<feature var='http://jabber.org/protocol/disco#items'/>" +
  "<feature var='http://jabber.org/protocol/muc'/>" +
  "<x xmlns='jabber:x:data' type='result'>" +
  "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>" +
  "<field var='ip_version'><value>ipv4</value><value>ipv6</value></field>" +
  "<field var='os'><value>Mac</value></field>" +
  "<field var='os_version'><value>10.5.1</value></field>" +
  "<field var='software'><value>Psi</value></field>" +
  "<field var='software_version'><value>0.11</value></field>" +
  "</x>";

const DISCO_IQ =
  /<iq [^>]*type="get"[^>]*><query xmlns="http:\/\/jabber.org\/protocol\/disco#info"[^>]*\/><\/iq>/;

class Harness {
  clients: RawClient[] = [];
  events: CapsUpdatedEvent[] = [];
  featuresOf: CapsExports["featuresOf"];

  constructor(readonly t: TestServer) {
    const caps = t.server.modules.get("localhost", "caps")!;
    this.featuresOf = caps.exports.featuresOf as CapsExports["featuresOf"];
    t.server.hosts.events("localhost")!.on("caps-updated", (e: CapsUpdatedEvent) => {
      this.events.push(e);
    });
  }

  static async start(): Promise<Harness> {
    const t = await startTestServer(CONFIG);
    await t.server.users("localhost")!.createUser("juliet", "pw");
    return new Harness(t);
  }

  /** A resource of juliet's that sends `presence` (its caps) once logged in. */
  async online(resource: string, presence: string): Promise<RawClient> {
    const c = await RawClient.connect(this.t.port);
    this.clients.push(c);
    await c.login("juliet", "pw", resource);
    c.send(presence);
    return c;
  }

  session(resource: string): Session {
    return this.t.server.sessions.fullSession(`juliet@localhost/${resource}`)!;
  }

  /** Waits for the server's disco#info request; returns its id and node. */
  async query(c: RawClient): Promise<{ id: string; node: string; to: string; from: string }> {
    const raw = (await c.waitFor(DISCO_IQ))[0];
    c.received = c.received.replace(raw, "");
    const iq = parseXml(raw);
    return {
      id: iq.attrs.id!,
      to: iq.attrs.to!,
      from: iq.attrs.from!,
      node: iq.getChild("query", "http://jabber.org/protocol/disco#info")!.attrs.node!,
    };
  }

  answer(c: RawClient, id: string, node: string, inner: string): void {
    c.send(
      `<iq type='result' to='localhost' id='${id}'>` +
        `<query xmlns='http://jabber.org/protocol/disco#info' node='${node}'>${inner}</query></iq>`,
    );
  }

  async until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Waits for the client's own presence to come back, then a little more. */
  async settled(c: RawClient, resource: string): Promise<void> {
    await c.waitFor(new RegExp(`<presence [^>]*from="juliet@localhost/${resource}"`));
    await new Promise((r) => setTimeout(r, 100));
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    await this.t.stop();
  }
}

const caps = (ver: string, node = NODE, hash = "sha-1") =>
  `<presence><c xmlns='http://jabber.org/protocol/caps' hash='${hash}' node='${node}' ver='${ver}'/></presence>`;

Deno.test("caps: a ver is asked for once, verified and cached; the next client is not asked", async () => {
  const h = await Harness.start();
  try {
    const a = await h.online("a", caps(SIMPLE_VER));
    const q = await h.query(a);
    assert.equal(q.node, `${NODE}#${SIMPLE_VER}`);
    assert.equal(q.to, "juliet@localhost/a");
    assert.equal(q.from, "localhost");
    assert.equal(h.featuresOf(h.session("a")), undefined); // not known yet
    h.answer(a, q.id, q.node, SIMPLE);
    await h.until(() => h.featuresOf(h.session("a")) !== undefined, "a's features");
    assert.deepEqual([...h.featuresOf(h.session("a"))!].sort(), SIMPLE_FEATURES);
    assert.equal(h.events.length, 1);
    assert.equal(h.events[0].session, h.session("a"));
    assert.deepEqual([...h.events[0].features].sort(), SIMPLE_FEATURES);

    // Same ver: known at once (before the presence is even broadcast), no iq.
    const b = await h.online("b", caps(SIMPLE_VER));
    await h.settled(b, "b");
    assert.doesNotMatch(b.received, /disco#info/);
    assert.deepEqual([...h.featuresOf(h.session("b"))!].sort(), SIMPLE_FEATURES);
    assert.equal(h.events.length, 2);
    assert.equal(h.events[1].session, h.session("b"));

    // The same caps again (a status change): nothing new.
    b.clear();
    b.send(caps(SIMPLE_VER).replace("</presence>", "<show>away</show></presence>"));
    await h.settled(b, "b");
    assert.doesNotMatch(b.received, /disco#info/);
    assert.equal(h.events.length, 2);

    // Presence without caps forgets them.
    b.send("<presence/>");
    await h.until(() => h.featuresOf(h.session("b")) === undefined, "b's features forgotten");
    assert.equal(h.events.length, 2); // (no event for forgetting)
    assert.ok(h.featuresOf(h.session("a"))); // a's stay

    // Caps again: known at once, and announced again.
    b.send(caps(SIMPLE_VER));
    await h.until(() => h.featuresOf(h.session("b")) !== undefined, "b's features again");
    assert.equal(h.events.length, 3);
    assert.deepEqual([...h.events[2].features].sort(), SIMPLE_FEATURES);

    // Going unavailable too; and an ended session has none.
    a.send("<presence type='unavailable'/>");
    await h.until(() => h.featuresOf(h.session("a")) === undefined, "a's features forgotten");
  } finally {
    await h.stop();
  }
});

Deno.test("caps: sessions with the same ver wait for the one query in flight", async () => {
  const h = await Harness.start();
  try {
    const clients = await Promise.all(
      ["c1", "c2", "c3"].map((r) => h.online(r, caps(COMPLEX_VER, PSI_NODE))),
    );
    await h.until(() => clients.some((c) => DISCO_IQ.test(c.received)), "a query");
    await new Promise((r) => setTimeout(r, 100));
    const asked = clients.filter((c) => DISCO_IQ.test(c.received));
    assert.equal(asked.length, 1, "only one client is asked");
    const q = await h.query(asked[0]);
    assert.equal(q.node, `${PSI_NODE}#${COMPLEX_VER}`);
    h.answer(asked[0], q.id, q.node, COMPLEX);
    await h.until(
      () => ["c1", "c2", "c3"].every((r) => h.featuresOf(h.session(r)) !== undefined),
      "everyone's features",
    );
    for (const r of ["c1", "c2", "c3"]) {
      assert.ok(h.featuresOf(h.session(r))!.has("http://jabber.org/protocol/muc"));
    }
    for (const c of clients) assert.doesNotMatch(c.received, /disco#info/);
  } finally {
    await h.stop();
  }
});

Deno.test("caps: a wrong answer serves its session only; the next client with that ver is asked", async () => {
  const h = await Harness.start();
  try {
    const liar = await h.online("liar", caps(SIMPLE_VER));
    const q1 = await h.query(liar);
    h.answer(liar, q1.id, q1.node, "<feature var='urn:example:other'/>");
    await h.until(() => h.featuresOf(h.session("liar")) !== undefined, "the liar's features");
    assert.deepEqual([...h.featuresOf(h.session("liar"))!], ["urn:example:other"]);

    // Not cached: an honest client is asked, and its answer is.
    const honest = await h.online("honest", caps(SIMPLE_VER));
    const q2 = await h.query(honest);
    h.answer(honest, q2.id, q2.node, SIMPLE);
    await h.until(() => h.featuresOf(h.session("honest")) !== undefined, "honest's features");
    assert.deepEqual([...h.featuresOf(h.session("honest"))!].sort(), SIMPLE_FEATURES);
    assert.deepEqual([...h.featuresOf(h.session("liar"))!], ["urn:example:other"]);

    const third = await h.online("third", caps(SIMPLE_VER));
    await h.settled(third, "third");
    assert.doesNotMatch(third.received, /disco#info/);
    assert.deepEqual([...h.featuresOf(h.session("third"))!].sort(), SIMPLE_FEATURES);
  } finally {
    await h.stop();
  }
});

Deno.test("caps: an ill-formed answer is not cached either", async () => {
  const h = await Harness.start();
  try {
    const a = await h.online("a", caps(SIMPLE_VER));
    const q1 = await h.query(a);
    // The right features, plus one listed twice: the hash cannot be trusted (§5.4).
    h.answer(a, q1.id, q1.node, SIMPLE + "<feature var='http://jabber.org/protocol/muc'/>");
    await h.until(() => h.featuresOf(h.session("a")) !== undefined, "a's features");
    const b = await h.online("b", caps(SIMPLE_VER));
    const q2 = await h.query(b);
    assert.equal(q2.node, `${NODE}#${SIMPLE_VER}`);
  } finally {
    await h.stop();
  }
});

Deno.test("caps: an error reply leaves the session without features; a waiting session is asked next", async () => {
  const h = await Harness.start();
  try {
    const clients = await Promise.all(["e1", "e2"].map((r) => h.online(r, caps(SIMPLE_VER))));
    await h.until(() => clients.some((c) => DISCO_IQ.test(c.received)), "a query");
    const [first, second] = DISCO_IQ.test(clients[0].received) ? clients : [clients[1], clients[0]];
    const firstResource = first === clients[0] ? "e1" : "e2";
    const secondResource = first === clients[0] ? "e2" : "e1";
    const q1 = await h.query(first);
    first.send(
      `<iq type='error' to='localhost' id='${q1.id}'><error type='cancel'>` +
        `<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
    );
    const q2 = await h.query(second);
    h.answer(second, q2.id, q2.node, SIMPLE);
    await h.until(() => h.featuresOf(h.session(secondResource)) !== undefined, "features");
    assert.equal(h.featuresOf(h.session(firstResource)), undefined);
    assert.equal(h.events.filter((e) => e.session === h.session(firstResource)).length, 0);
  } finally {
    await h.stop();
  }
});

Deno.test("caps: legacy caps (no hash) are asked for every session and never cached", async () => {
  const h = await Harness.start();
  const legacy =
    `<presence><c xmlns='http://jabber.org/protocol/caps' node='${NODE}' ver='0.9.1'/></presence>`;
  try {
    for (const r of ["l1", "l2"]) {
      const c = await h.online(r, legacy);
      const q = await h.query(c);
      assert.equal(q.node, `${NODE}#0.9.1`);
      h.answer(c, q.id, q.node, "<feature var='urn:example:legacy'/>");
      await h.until(() => h.featuresOf(h.session(r)) !== undefined, `${r}'s features`);
      assert.deepEqual([...h.featuresOf(h.session(r))!], ["urn:example:legacy"]);
    }
  } finally {
    await h.stop();
  }
});

Deno.test("caps: a session that ends before answering gets nothing, and the ver is asked again", async () => {
  const h = await Harness.start();
  try {
    const gone = await h.online("gone", caps(SIMPLE_VER));
    await h.query(gone);
    gone.close();
    await h.until(
      () => h.t.server.sessions.fullSession("juliet@localhost/gone") === undefined,
      "end",
    );
    const next = await h.online("next", caps(SIMPLE_VER));
    const q = await h.query(next);
    h.answer(next, q.id, q.node, SIMPLE);
    await h.until(() => h.featuresOf(h.session("next")) !== undefined, "next's features");
    assert.equal(h.events.length, 1);
  } finally {
    await h.stop();
  }
});
