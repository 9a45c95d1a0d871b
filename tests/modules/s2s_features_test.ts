/**
 * What single-server features do, across two Cadence servers (a.test and
 * b.test on loopback, a loopback DNS server, plain s2s with dialback):
 * carbons, MAM, offline messages, blocking remote JIDs, vCard and last
 * activity queries, a MUC room with a remote occupant, and PEP
 * notifications to a remote contact. Each test checks the stanzas on the
 * wire: namespaces, from/to, and the order where it matters.
 */
import assert from "node:assert/strict";
import { freePort, startTestServer, type TestServer } from "../helpers/server.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { StreamParser } from "../../core/xml/parser.ts";
import { parseXml } from "../../core/xml/parser.ts";
import type { Stanza } from "../../core/xml/stanza.ts";
import { capsVer } from "../../core/xml/caps.ts";

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  s2s_require_encryption: false,
};
const BASE = ["roster", "saslauth", "disco", "ping", "version", "s2s"];
const WAIT = 10_000;

type Login = (who: string, host: string, t: TestServer, resource?: string) => Promise<RawClient>;

interface Setup {
  /** Extra modules for both servers. */
  modules?: string[];
  /** Extra options for server a (e.g. components). */
  a?: Record<string, unknown>;
}

async function twoServers(
  fn: (a: TestServer, b: TestServer, login: Login) => Promise<void>,
  setup: Setup = {},
) {
  const [pa, pb] = [await freePort(), await freePort()];
  const dns: DnsServer = await startDnsServer({
    "_xmpp-server._tcp.a.test": [{ srv: [0, 0, pa, "a.test"] }],
    "_xmpp-server._tcp.conference.a.test": [{ srv: [0, 0, pa, "a.test"] }],
    "_xmpp-server._tcp.b.test": [{ srv: [0, 0, pb, "b.test"] }],
    "a.test": [{ a: "127.0.0.1" }],
    "conference.a.test": [{ a: "127.0.0.1" }],
    "b.test": [{ a: "127.0.0.1" }],
  });
  const common = { ...PLAIN, s2s_dns_server: `127.0.0.1:${dns.nameServer.port}` };
  const modules = { modules_enabled: [...BASE, ...(setup.modules ?? [])] };
  const a = await startTestServer({
    ...common,
    ...modules,
    virtual_hosts: { "a.test": {} },
    s2s_ports: [pa],
    ...setup.a,
  });
  const b = await startTestServer({
    ...common,
    ...modules,
    virtual_hosts: { "b.test": {} },
    s2s_ports: [pb],
  }).catch(async (e) => {
    await a.stop();
    throw e;
  });
  const clients: RawClient[] = [];
  try {
    await a.server.users("a.test")!.createUser("alice", "pw");
    await b.server.users("b.test")!.createUser("bob", "pw");
    await fn(a, b, async (who, host, t, resource = "r") => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(who, "pw", resource, host);
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await a.stop();
    await b.stop();
    dns.close();
  }
}

/** The stanzas a client received so far (since its last `clear()`), parsed. */
function stanzas(c: RawClient): Stanza[] {
  const out: Stanza[] = [];
  const parser = new StreamParser({
    streamOpen() {},
    stanza(el) {
      out.push(el);
    },
    streamClose() {},
    error() {},
  }, { maxStanzaSize: Infinity, maxDepth: 1000 });
  const enc = new TextEncoder();
  parser.feed(
    enc.encode(
      "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    ),
  );
  parser.feed(enc.encode(c.received));
  return out;
}

/** Waits for the first received stanza matching `pred`. */
async function waitStanza(
  c: RawClient,
  pred: (s: Stanza) => boolean,
  what: string,
  ms = WAIT,
): Promise<Stanza> {
  const deadline = Date.now() + ms;
  while (true) {
    const found = stanzas(c).find(pred);
    if (found) return found;
    if (Date.now() > deadline) {
      throw new Error(`no ${what}; got: ${c.received.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

let seq = 0;

/** Sends an iq and waits for its answer. */
async function iq(c: RawClient, type: string, inner: string, to?: string): Promise<Stanza> {
  const id = `q${++seq}`;
  c.send(`<iq type='${type}' id='${id}'${to ? ` to='${to}'` : ""}>${inner}</iq>`);
  return await waitStanza(c, (s) => s.name === "iq" && s.attrs.id === id, `iq ${id}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The stanza error's defined conditions. */
const errorOf = (s: Stanza) =>
  s.getChild("error")?.tags().filter((c) => c.name !== "text").map((c) => c.name).join(" ");

/** alice@a.test and bob@b.test in each other's rosters, subscribed both ways. */
async function contacts(a: TestServer, b: TestServer) {
  await a.server.rosters.modify("alice", "a.test", (r) => {
    r.items.set("bob@b.test", { subscription: "both", groups: [] });
    return ["bob@b.test"];
  });
  await b.server.rosters.modify("bob", "b.test", (r) => {
    r.items.set("alice@a.test", { subscription: "both", groups: [] });
    return ["alice@a.test"];
  });
}

const CARBONS = "urn:xmpp:carbons:2";
const FORWARD = "urn:xmpp:forward:0";

Deno.test("s2s features: carbons copy chats to and from a remote contact", async () => {
  await twoServers(async (a, b, login) => {
    const desk = await login("alice", "a.test", a, "desk");
    const phone = await login("alice", "a.test", a, "phone");
    const bob = await login("bob", "b.test", b);
    for (const c of [desk, phone]) {
      assert.equal((await iq(c, "set", `<enable xmlns='${CARBONS}'/>`)).attrs.type, "result");
      c.send("<presence/>");
    }
    bob.send("<presence/>");
    await sleep(200);
    desk.clear();
    phone.clear();

    // bob → alice@a.test/desk: desk gets it, phone gets a <received/> carbon.
    bob.send(
      "<message to='alice@a.test/desk' type='chat' id='in1'><body>to your desk</body></message>",
    );
    const got = await waitStanza(
      desk,
      (s) => s.name === "message" && s.getChildText("body") === "to your desk",
      "the chat at desk",
    );
    assert.equal(got.attrs.from, "bob@b.test/r");
    assert.equal(got.attrs.to, "alice@a.test/desk");
    const received = await waitStanza(
      phone,
      (s) => s.name === "message" && s.getChild("received", CARBONS) !== undefined,
      "a received carbon at phone",
    );
    assert.equal(received.attrs.from, "alice@a.test");
    assert.equal(received.attrs.to, "alice@a.test/phone");
    const inner = received.getChild("received", CARBONS)!.getChild("forwarded", FORWARD)!
      .getChild("message", "jabber:client")!;
    assert.equal(inner.attrs.from, "bob@b.test/r");
    assert.equal(inner.attrs.to, "alice@a.test/desk");
    assert.equal(inner.getChildText("body"), "to your desk");
    assert.ok(
      !stanzas(phone).some((s) =>
        s.name === "message" && s.getChildText("body") === "to your desk"
      ),
      "phone gets the carbon, not the message",
    );

    // alice (desk) → bob: bob gets it, phone gets a <sent/> carbon.
    phone.clear();
    desk.send("<message to='bob@b.test' type='chat' id='out1'><body>from my desk</body></message>");
    const atBob = await waitStanza(
      bob,
      (s) => s.name === "message" && s.getChildText("body") === "from my desk",
      "alice's chat at bob",
    );
    assert.equal(atBob.attrs.from, "alice@a.test/desk");
    const sent = await waitStanza(
      phone,
      (s) => s.name === "message" && s.getChild("sent", CARBONS) !== undefined,
      "a sent carbon at phone",
    );
    assert.equal(sent.attrs.from, "alice@a.test");
    assert.equal(sent.attrs.to, "alice@a.test/phone");
    const out = sent.getChild("sent", CARBONS)!.getChild("forwarded", FORWARD)!
      .getChild("message", "jabber:client")!;
    assert.equal(out.attrs.from, "alice@a.test/desk");
    assert.equal(out.attrs.to, "bob@b.test");
    assert.equal(out.getChildText("body"), "from my desk");
    // The sender gets no carbon of her own message.
    await sleep(200);
    assert.ok(!stanzas(desk).some((s) => s.getChild("sent", CARBONS)));
  }, { modules: ["carbons"] });
});

const MAM = "urn:xmpp:mam:2";

Deno.test("s2s features: MAM archives both directions of a chat with a remote contact", async () => {
  await twoServers(async (a, b, login) => {
    const alice = await login("alice", "a.test", a);
    const bob = await login("bob", "b.test", b);
    alice.send("<presence/>");
    bob.send("<presence/>");
    alice.send("<message to='bob@b.test' type='chat' id='m1'><body>one from a</body></message>");
    await waitStanza(bob, (s) => s.getChildText("body") === "one from a", "alice's chat at bob");
    bob.send("<message to='alice@a.test' type='chat' id='m2'><body>two from b</body></message>");
    await waitStanza(alice, (s) => s.getChildText("body") === "two from b", "bob's chat at alice");
    alice.clear();

    const done = await iq(alice, "set", `<query xmlns='${MAM}' queryid='f1'/>`);
    assert.equal(done.attrs.type, "result");
    assert.ok(done.getChild("fin", MAM));
    const results = stanzas(alice).filter((s) =>
      s.name === "message" && s.getChild("result", MAM)?.attrs.queryid === "f1"
    );
    const archived = results.map((r) =>
      r.getChild("result", MAM)!.getChild("forwarded", FORWARD)!.getChild(
        "message",
        "jabber:client",
      )!
    );
    assert.deepEqual(
      archived.map((m) => [m.attrs.from, m.attrs.to, m.getChildText("body")]),
      [
        ["alice@a.test/r", "bob@b.test", "one from a"],
        ["bob@b.test/r", "alice@a.test", "two from b"],
      ],
    );
    // With filter: by the remote contact's bare JID.
    alice.clear();
    const withBob = await iq(
      alice,
      "set",
      `<query xmlns='${MAM}' queryid='f2'><x xmlns='jabber:x:data' type='submit'>` +
        `<field var='FORM_TYPE' type='hidden'><value>${MAM}</value></field>` +
        `<field var='with'><value>bob@b.test</value></field></x></query>`,
    );
    assert.equal(withBob.attrs.type, "result");
    assert.equal(
      stanzas(alice).filter((s) => s.getChild("result", MAM)?.attrs.queryid === "f2").length,
      2,
    );
  }, { modules: ["mam"] });
});

const DELAY = "urn:xmpp:delay";

Deno.test("s2s features: a message from a remote contact to an offline user is delivered later with a delay stamp", async () => {
  await twoServers(async (a, b, login) => {
    const bob = await login("bob", "b.test", b);
    bob.send("<presence/>");
    bob.send(
      "<message to='alice@a.test' type='chat' id='o1'><body>while you were out</body></message>",
    );
    // Stored, not bounced: wait for a's offline store to hold it.
    const deadline = Date.now() + WAIT;
    const store = a.server.storage.open("a.test", "offline", "archive");
    while (await store.count("alice") === 0) {
      if (Date.now() > deadline) throw new Error(`not stored; bob got: ${bob.received}`);
      await sleep(50);
    }
    assert.doesNotMatch(bob.received, /type="error"/);

    const alice = await login("alice", "a.test", a);
    alice.send("<presence/>");
    const got = await waitStanza(
      alice,
      (s) => s.name === "message" && s.getChildText("body") === "while you were out",
      "the offline message",
    );
    assert.equal(got.attrs.from, "bob@b.test/r");
    assert.equal(got.attrs.to, "alice@a.test");
    const delay = got.getChild("delay", DELAY);
    assert.ok(delay, "a delay stamp");
    assert.equal(delay.attrs.from, "a.test");
    assert.match(delay.attrs.stamp!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  }, { modules: [] });
});

const BLOCKING = "urn:xmpp:blocking";

Deno.test("s2s features: blocking a remote JID refuses its messages and ours to it, until unblocked", async () => {
  await twoServers(async (a, b, login) => {
    const alice = await login("alice", "a.test", a);
    const bob = await login("bob", "b.test", b);
    alice.send("<presence/>");
    bob.send("<presence/>");
    // The route works first.
    bob.send("<message to='alice@a.test' type='chat' id='b0'><body>hi</body></message>");
    await waitStanza(alice, (s) => s.getChildText("body") === "hi", "bob's first chat");

    const blocked = await iq(
      alice,
      "set",
      `<block xmlns='${BLOCKING}'><item jid='bob@b.test'/></block>`,
    );
    assert.equal(blocked.attrs.type, "result");
    alice.clear();
    bob.clear();

    // Bob's message is refused with service-unavailable, back across to bob.
    bob.send("<message to='alice@a.test' type='chat' id='b1'><body>blocked?</body></message>");
    const err = await waitStanza(
      bob,
      (s) => s.name === "message" && s.attrs.id === "b1",
      "the refusal at bob",
    );
    assert.equal(err.attrs.type, "error");
    assert.equal(err.attrs.from, "alice@a.test");
    assert.equal(err.attrs.to, "bob@b.test/r");
    assert.equal(errorOf(err), "service-unavailable");
    assert.equal(err.getChild("error")!.attrs.type, "cancel");

    // Alice's message to bob is refused at a.test, never sent.
    alice.send("<message to='bob@b.test' type='chat' id='b2'><body>to blocked</body></message>");
    const refused = await waitStanza(
      alice,
      (s) => s.name === "message" && s.attrs.id === "b2",
      "the local refusal",
    );
    assert.equal(refused.attrs.type, "error");
    assert.equal(errorOf(refused), "not-acceptable blocked");
    assert.ok(refused.getChild("error")!.getChild("blocked", "urn:xmpp:blocking:errors"));
    await sleep(300);
    assert.doesNotMatch(alice.received, /blocked\?/);
    assert.doesNotMatch(bob.received, /to blocked/);

    // Unblocked: both ways again.
    const unblocked = await iq(
      alice,
      "set",
      `<unblock xmlns='${BLOCKING}'><item jid='bob@b.test'/></unblock>`,
    );
    assert.equal(unblocked.attrs.type, "result");
    bob.send("<message to='alice@a.test' type='chat' id='b3'><body>again</body></message>");
    const again = await waitStanza(alice, (s) => s.getChildText("body") === "again", "b3");
    assert.equal(again.attrs.from, "bob@b.test/r");
    alice.send("<message to='bob@b.test' type='chat' id='b4'><body>welcome back</body></message>");
    const back = await waitStanza(bob, (s) => s.getChildText("body") === "welcome back", "b4");
    assert.equal(back.attrs.from, "alice@a.test/r");
  }, { modules: ["blocklist"] });
});

Deno.test("s2s features: vCard and last activity queries to a remote user are answered", async () => {
  await twoServers(async (a, b, login) => {
    await contacts(a, b);
    const alice = await login("alice", "a.test", a);
    alice.send("<presence/>");
    const set = await iq(
      alice,
      "set",
      "<vCard xmlns='vcard-temp'><FN>Alice A.</FN><NICKNAME>al</NICKNAME></vCard>",
    );
    assert.equal(set.attrs.type, "result");
    const bob = await login("bob", "b.test", b);
    bob.send("<presence/>");

    const card = await iq(bob, "get", "<vCard xmlns='vcard-temp'/>", "alice@a.test");
    assert.equal(card.attrs.type, "result");
    assert.equal(card.attrs.from, "alice@a.test");
    assert.equal(card.attrs.to, "bob@b.test/r");
    assert.equal(card.getChild("vCard", "vcard-temp")?.getChildText("FN"), "Alice A.");

    const last = await iq(bob, "get", "<query xmlns='jabber:iq:last'/>", "alice@a.test");
    assert.equal(last.attrs.type, "result", last.toString());
    assert.equal(last.attrs.from, "alice@a.test");
    assert.equal(last.getChild("query", "jabber:iq:last")?.attrs.seconds, "0");

    // Alice leaves with a status: bob is told how long ago, and the status.
    alice.send("<presence type='unavailable'><status>gone fishing</status></presence>");
    await sleep(300);
    const gone = await iq(bob, "get", "<query xmlns='jabber:iq:last'/>", "alice@a.test");
    assert.equal(gone.attrs.type, "result", gone.toString());
    const q = gone.getChild("query", "jabber:iq:last")!;
    assert.match(q.attrs.seconds!, /^\d+$/);
    assert.equal(q.getText(), "gone fishing");
  }, { modules: ["vcard_legacy", "lastactivity"] });
});

const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = `${MUC}#user`;
const ROOM = "club@conference.a.test";

Deno.test("s2s features: a remote user joins a MUC room and chats in it", async () => {
  await twoServers(async (a, b, login) => {
    const alice = await login("alice", "a.test", a);
    alice.send("<presence/>");
    alice.send(`<presence to='${ROOM}/alice'><x xmlns='${MUC}'/></presence>`);
    const made = await waitStanza(
      alice,
      (s) => s.name === "presence" && s.attrs.from === `${ROOM}/alice`,
      "alice's self-presence",
    );
    assert.match(made.toString(), /code="201"/);
    const conf = await iq(
      alice,
      "set",
      `<query xmlns='${MUC}#owner'><x xmlns='jabber:x:data' type='submit'/></query>`,
      ROOM,
    );
    assert.equal(conf.attrs.type, "result");
    alice.clear();

    const bob = await login("bob", "b.test", b);
    bob.send("<presence/>");
    bob.send(`<presence to='${ROOM}/bob'><x xmlns='${MUC}'/></presence>`);
    const subject = await waitStanza(
      bob,
      (s) => s.name === "message" && s.getChild("subject") !== undefined,
      "the subject at bob",
    );
    assert.equal(subject.attrs.from, ROOM);
    assert.equal(subject.attrs.to, "bob@b.test/r");
    assert.equal(subject.attrs.type, "groupchat");
    // In the XEP's order: alice's presence, bob's own (110), then the subject.
    const seen = stanzas(bob).filter((s) => s.attrs.from?.startsWith(ROOM));
    assert.deepEqual(
      seen.map((s) => [s.name, s.attrs.from]),
      [["presence", `${ROOM}/alice`], ["presence", `${ROOM}/bob`], ["message", ROOM]],
    );
    const self = seen[1];
    assert.equal(self.attrs.to, "bob@b.test/r");
    const codes = self.getChild("x", MUC_USER)!.tags().filter((t) => t.name === "status")
      .map((t) => t.attrs.code);
    assert.ok(codes.includes("110"), self.toString());
    // Alice (owner) sees bob join, with his real JID.
    const bobSeen = await waitStanza(
      alice,
      (s) => s.name === "presence" && s.attrs.from === `${ROOM}/bob`,
      "bob's presence at alice",
    );
    assert.equal(bobSeen.getChild("x", MUC_USER)!.getChild("item")!.attrs.jid, "bob@b.test/r");

    alice.send(`<message to='${ROOM}' type='groupchat' id='g1'><body>welcome bob</body></message>`);
    const g1 = await waitStanza(
      bob,
      (s) => s.name === "message" && s.getChildText("body") === "welcome bob",
      "alice's groupchat at bob",
    );
    assert.equal(g1.attrs.from, `${ROOM}/alice`);
    assert.equal(g1.attrs.to, "bob@b.test/r");
    assert.equal(g1.attrs.type, "groupchat");

    bob.send(`<message to='${ROOM}' type='groupchat' id='g2'><body>thanks alice</body></message>`);
    const g2 = await waitStanza(
      alice,
      (s) => s.name === "message" && s.getChildText("body") === "thanks alice",
      "bob's groupchat at alice",
    );
    assert.equal(g2.attrs.from, `${ROOM}/bob`);
    assert.equal(g2.attrs.to, "alice@a.test/r");
    // Bob gets his own message reflected, with his id.
    const echo = await waitStanza(
      bob,
      (s) => s.name === "message" && s.getChildText("body") === "thanks alice",
      "bob's echo",
    );
    assert.equal(echo.attrs.from, `${ROOM}/bob`);
    assert.equal(echo.attrs.id, "g2");
  }, { a: { components: { "conference.a.test": { module: "muc" } } } });
});

const PUBSUB = "http://jabber.org/protocol/pubsub";
const TUNE = "http://jabber.org/protocol/tune";

/** Sends available presence with caps for `features`; answers the disco#info the server sends. */
async function presenceWithCaps(c: RawClient, features: string[]) {
  const query = parseXml(
    "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc' name='t'/>" +
      features.map((f) => `<feature var='${f}'/>`).join("") + "</query>",
  );
  const ver = await capsVer(query);
  c.send(
    `<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='urn:t' ver='${ver}'/></presence>`,
  );
  return { query, ver };
}

Deno.test("s2s features: a PEP publish reaches a remote contact whose client wants it (+notify)", async () => {
  await twoServers(async (a, b, login) => {
    await contacts(a, b);
    const alice = await login("alice", "a.test", a);
    alice.send("<presence/>");
    const publish = (id: string, title: string) =>
      iq(
        alice,
        "set",
        `<pubsub xmlns='${PUBSUB}'><publish node='${TUNE}'><item id='${id}'>` +
          `<tune xmlns='${TUNE}'><title>${title}</title></tune></item></publish></pubsub>`,
      );
    assert.equal((await publish("t0", "Before")).attrs.type, "result");
    const bob = await login("bob", "b.test", b);
    const { query, ver } = await presenceWithCaps(bob, [
      TUNE + "+notify",
      "http://jabber.org/protocol/disco#info",
    ]);
    // Both servers ask bob's client what its caps mean: his own, and alice's, across.
    const answer = async (host: string) => {
      const asked = await waitStanza(
        bob,
        (s) =>
          s.name === "iq" && s.attrs.type === "get" && s.attrs.from === host &&
          s.getChild("query", "http://jabber.org/protocol/disco#info") !== undefined,
        `the disco#info from ${host} for bob's caps`,
      );
      assert.equal(asked.attrs.to, "bob@b.test/r");
      assert.equal(
        asked.getChild("query", "http://jabber.org/protocol/disco#info")!.attrs.node,
        `urn:t#${ver}`,
      );
      bob.send(
        `<iq type='result' id='${asked.attrs.id}' to='${asked.attrs.from}'>` +
          `<query xmlns='http://jabber.org/protocol/disco#info' node='urn:t#${ver}'>` +
          query.children.map((x) => x.toString()).join("") + "</query></iq>",
      );
    };
    await Promise.all([answer("b.test"), answer("a.test")]);
    const event = (id: string) =>
      waitStanza(
        bob,
        (s) =>
          s.name === "message" &&
          s.getChild("event", `${PUBSUB}#event`)?.getChild("items")?.getChild("item")?.attrs
              .id === id,
        `the PEP event ${id} at bob`,
      );
    const check = (ev: Stanza, id: string, title: string) => {
      assert.equal(ev.attrs.from, "alice@a.test");
      assert.equal(ev.attrs.to, "bob@b.test/r");
      assert.equal(ev.attrs.type, "headline");
      const items = ev.getChild("event", `${PUBSUB}#event`)!.getChild("items")!;
      assert.equal(items.attrs.node, TUNE);
      const item = items.getChild("item")!;
      assert.equal(item.attrs.id, id);
      assert.equal(item.getChild("tune", TUNE)?.getChildText("title"), title);
    };
    // Once bob's interests are known across, the last item goes to him...
    check(await event("t0"), "t0", "Before");
    // ... and so does each new one.
    assert.equal((await publish("t1", "Across")).attrs.type, "result");
    check(await event("t1"), "t1", "Across");
    const events = stanzas(bob).filter((s) => s.getChild("event", `${PUBSUB}#event`));
    assert.deepEqual(
      events.map((e) =>
        e.getChild("event", `${PUBSUB}#event`)!.getChild("items")!.getChild("item")!.attrs.id
      ),
      ["t0", "t1"],
      "each once, in order",
    );
    // Bob goes unavailable: alice's server forgets his interests.
    bob.send("<presence type='unavailable'/>");
    await waitStanza(
      alice,
      (s) =>
        s.name === "presence" && s.attrs.from === "bob@b.test/r" && s.attrs.type === "unavailable",
      "bob's unavailable presence at alice",
    );
    assert.equal((await publish("t2", "Unheard")).attrs.type, "result");
    await sleep(500);
    assert.doesNotMatch(bob.received, /id="t2"/);
  }, { modules: ["pep"] });
});
