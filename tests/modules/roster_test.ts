/** Roster get/set rules, versioning, limits and concurrency (RFC 6121 §2, XEP-0237). */
import assert from "node:assert/strict";
import { RawClient, streamHeader } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import type { KeyValStore } from "../../core/storage/types.ts";

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  max_roster_items: 30,
};

function set(id: string, item: string) {
  return `<iq type='set' id='${id}'><query xmlns='jabber:iq:roster'>${item}</query></iq>`;
}

Deno.test("roster set rules, versioning and the item limit", async () => {
  const t = await startTestServer(PLAIN);
  const c = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await c.login("juliet", "pw");
    c.send("<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>");
    const first = (await c.waitFor(/<iq [^>]*id="g1".*?<\/iq>|<iq [^>]*id="g1"[^>]*\/>/s))[0];
    const ver = /ver="(\d+)"/.exec(first)![1];
    c.send(set("s1", "<item jid='Romeo@LocalHost' name='R'><group>Friends</group></item>"));
    await c.waitFor(/<iq [^>]*id="s1"[^>]*type="result"/);
    assert.match(
      c.received,
      /<item jid="romeo@localhost" subscription="none" name="R"><group>Friends<\/group><\/item>/,
    );
    // The version moved on: an old ver gets the roster, the current one an empty result.
    c.clear();
    c.send(`<iq type='get' id='g2'><query xmlns='jabber:iq:roster' ver='${ver}'/></iq>`);
    const g2 = (await c.waitFor(/<iq [^>]*id="g2".*?<\/iq>/s))[0];
    const ver2 = /ver="(\d+)"/.exec(g2)![1];
    assert.notEqual(ver2, ver);
    c.send(`<iq type='get' id='g3'><query xmlns='jabber:iq:roster' ver='${ver2}'/></iq>`);
    assert.match((await c.waitFor(/<iq [^>]*id="g3"[^>]*>/))[0], /type="result"\/>$/);

    c.clear();
    c.send(set("e1", "<item jid='a@localhost'/><item jid='b@localhost'/>"));
    assert.match((await c.waitFor(/id="e1".*?<\/iq>/s))[0], /bad-request/);
    c.send(set("e2", "<item jid='not a jid'/>"));
    assert.match((await c.waitFor(/id="e2".*?<\/iq>/s))[0], /jid-malformed/);
    c.send(set("e3", "<item jid='x@localhost'><group></group></item>"));
    assert.match((await c.waitFor(/id="e3".*?<\/iq>/s))[0], /not-acceptable/);
    c.send(set("e4", "<item jid='nobody@localhost' subscription='remove'/>"));
    assert.match((await c.waitFor(/id="e4".*?<\/iq>/s))[0], /item-not-found/);
    c.send(set("e5", "<item jid='juliet@localhost'/>"));
    assert.match((await c.waitFor(/id="e5".*?<\/iq>/s))[0], /not-allowed/);
    // Someone else's roster is not ours to read.
    c.send("<iq type='get' id='e6' to='romeo@localhost'><query xmlns='jabber:iq:roster'/></iq>");
    assert.match((await c.waitFor(/id="e6".*?<\/iq>/s))[0], /service-unavailable/);

    let burst = "";
    for (let i = 0; i < 40; i++) burst += set(`l${i}`, `<item jid='c${i}@localhost'/>`);
    c.send(burst);
    await c.waitFor(/id="l39"/);
    assert.match(
      c.received,
      /<iq [^>]*id="l3[0-9]"[^>]*type="error"><error type="wait"><resource-constraint /,
    );
    const roster = await t.server.rosters.load("juliet", "localhost");
    assert.equal(roster.items.size, 30);
  } finally {
    c.close();
    await t.stop();
  }
});

Deno.test("concurrent roster changes from two resources lose no item", async () => {
  const t = await startTestServer(PLAIN);
  const a = await RawClient.connect(t.port);
  const b = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await a.login("juliet", "pw", "a");
    await b.login("juliet", "pw", "b");
    let burstA = "";
    let burstB = "";
    for (let i = 0; i < 12; i++) {
      burstA += set(`a${i}`, `<item jid='a${i}@localhost'/>`);
      burstB += set(`b${i}`, `<item jid='b${i}@localhost'/>`);
    }
    a.send(burstA);
    b.send(burstB);
    await a.waitFor(/id="a11"/);
    await b.waitFor(/id="b11"/);
    assert.equal((await t.server.rosters.load("juliet", "localhost")).items.size, 24);
    // And storage agrees (a fresh load bypasses the online copy once all go offline).
    a.close();
    b.close();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await t.server.rosters.load("juliet", "localhost")).items.size, 24);
  } finally {
    a.close();
    b.close();
    await t.stop();
  }
});

/** The top-level elements in `xml`, in order. */
function split(xml: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (const m of xml.matchAll(/<(\/?)[^\s>/]+[^>]*?(\/?)>/g)) {
    if (depth === 0) start = m.index;
    if (m[1]) depth--;
    else if (!m[2]) depth++;
    if (depth === 0) out.push(xml.slice(start, m.index + m[0].length));
  }
  return out;
}

/** Waits for exactly `expected` (in order, nothing more; push ids masked), then forgets it. */
async function expectStanzas(c: RawClient, expected: string[]) {
  const deadline = Date.now() + 5000;
  while (split(c.received).length < expected.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 150)); // anything extra shows up too
  const got = split(c.received).map((s) => s.replace(/ id="push[^"]*"/, ' id="*"'));
  assert.deepEqual(got, expected);
  c.clear();
}

async function online(t: TestServer, clients: RawClient[], user: string, resource = "r") {
  const c = await RawClient.connect(t.port);
  clients.push(c);
  await c.login(user, "pw", resource);
  c.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>");
  await c.waitFor(/id="roster"/);
  c.send("<presence/>");
  await c.waitFor(/<presence [^>]*from="[^"]*" to="[^"]*"\/>/);
  await new Promise((r) => setTimeout(r, 100));
  c.clear();
  return c;
}

Deno.test("roster set: the result goes out before the push it causes", async () => {
  const t = await startTestServer(PLAIN);
  const clients: RawClient[] = [];
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    const a = await online(t, clients, "juliet", "a");
    const b = await online(t, clients, "juliet", "b");
    a.clear(); // b's presence
    a.send(set("s1", "<item jid='romeo@localhost' name='Romeo'/>"));
    const push = '<iq type="set" id="*" to="juliet@localhost/X"><query xmlns="jabber:iq:roster" ' +
      'ver="1"><item jid="romeo@localhost" subscription="none" name="Romeo"/></query></iq>';
    await expectStanzas(a, [
      '<iq id="s1" to="juliet@localhost/a" type="result"/>',
      push.replace("X", "a"),
    ]);
    await expectStanzas(b, [push.replace("X", "b")]);
    a.send(set("s2", "<item jid='romeo@localhost' subscription='remove'/>"));
    await expectStanzas(a, [
      '<iq id="s2" to="juliet@localhost/a" type="result"/>',
      '<iq type="set" id="*" to="juliet@localhost/a"><query xmlns="jabber:iq:roster" ver="2"><item jid="romeo@localhost" subscription="remove"/></query></iq>',
    ]);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
});

Deno.test("removing a contact: unavailable from each available resource, then unsubscribed", async () => {
  const t = await startTestServer(PLAIN);
  const clients: RawClient[] = [];
  try {
    for (const u of ["juliet", "romeo"]) await t.server.users("localhost")!.createUser(u, "pw");
    for (const [user, contact] of [["juliet", "romeo"], ["romeo", "juliet"]]) {
      await t.server.rosters.modify(user, "localhost", (roster) => {
        roster.items.set(`${contact}@localhost`, { subscription: "both", groups: [] });
        return [`${contact}@localhost`];
      });
    }
    const romeo = await online(t, clients, "romeo");
    const a = await online(t, clients, "juliet", "a");
    const b = await online(t, clients, "juliet", "b");
    const quiet = await RawClient.connect(t.port); // connected, never available
    clients.push(quiet);
    await quiet.login("juliet", "pw", "c");
    for (const c of [romeo, a, b]) c.clear();
    a.send(set("rm", "<item jid='romeo@localhost' subscription='remove'/>"));
    await expectStanzas(romeo, [
      '<presence from="juliet@localhost" to="romeo@localhost" type="unsubscribe"/>',
      '<iq type="set" id="*" to="romeo@localhost/r"><query xmlns="jabber:iq:roster" ver="2"><item jid="juliet@localhost" subscription="to"/></query></iq>',
      '<presence from="juliet@localhost/a" to="romeo@localhost" type="unavailable"/>',
      '<presence from="juliet@localhost/b" to="romeo@localhost" type="unavailable"/>',
      '<presence from="juliet@localhost" to="romeo@localhost" type="unsubscribed"/>',
      '<iq type="set" id="*" to="romeo@localhost/r"><query xmlns="jabber:iq:roster" ver="3"><item jid="juliet@localhost" subscription="none"/></query></iq>',
    ]);
    await expectStanzas(a, [
      '<iq id="rm" to="juliet@localhost/a" type="result"/>',
      '<iq type="set" id="*" to="juliet@localhost/a"><query xmlns="jabber:iq:roster" ver="2"><item jid="romeo@localhost" subscription="remove"/></query></iq>',
      // romeo's server: juliet no longer gets his presence.
      '<presence from="romeo@localhost/r" type="unavailable" to="juliet@localhost"/>',
    ]);
    await expectStanzas(b, [
      '<iq type="set" id="*" to="juliet@localhost/b"><query xmlns="jabber:iq:roster" ver="2"><item jid="romeo@localhost" subscription="remove"/></query></iq>',
      '<presence from="romeo@localhost/r" type="unavailable" to="juliet@localhost"/>',
    ]);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
});

Deno.test("offline roster: subscription requests arriving during a login are all kept (slow storage)", async () => {
  const t = await startTestServer(PLAIN);
  const clients: RawClient[] = [];
  try {
    const contacts = ["romeo", "tybalt", "mercutio"];
    for (const u of ["juliet", ...contacts]) await t.server.users("localhost")!.createUser(u, "pw");
    const [romeo, tybalt, mercutio] = await Promise.all(contacts.map((u) => online(t, clients, u)));

    // juliet authenticates but has not bound a resource yet.
    const juliet = await RawClient.connect(t.port);
    clients.push(juliet);
    juliet.send(streamHeader());
    await juliet.waitFor(/<\/stream:features>/);
    juliet.send(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
        btoa("\0juliet\0pw")
      }</auth>`,
    );
    await juliet.waitFor(/<success/);
    juliet.clear();
    juliet.send(streamHeader());
    await juliet.waitFor(/<\/stream:features>/);
    juliet.clear();

    // Roster storage as slow as a remote database: reads return late, writes land late.
    const delay = () => new Promise((r) => setTimeout(r, 50));
    let julietRead!: () => void;
    const firstRead = new Promise<void>((r) => julietRead = r);
    const storage = t.server.storage;
    const open = storage.open.bind(storage) as (h: string, s: string) => KeyValStore;
    (storage as { open: unknown }).open = (host: string, store: string, type?: string) => {
      const inner = (open as (h: string, s: string, t?: string) => KeyValStore)(host, store, type);
      if (store !== "roster") return inner;
      const slow: KeyValStore = {
        async get(user) {
          const value = await inner.get(user);
          await delay();
          if (user === "juliet") julietRead();
          return value;
        },
        async set(user, value) {
          await delay();
          await inner.set(user, value);
        },
        users: () => inner.users(),
      };
      return slow;
    };

    // Two requests at once while juliet is offline; she binds once the first read is done.
    romeo.send("<presence to='juliet@localhost' type='subscribe'/>");
    tybalt.send("<presence to='juliet@localhost' type='subscribe'/>");
    await firstRead;
    juliet.send(
      "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>",
    );
    await juliet.waitFor(/id="bind"/);
    // And one more once she is bound, before she is available.
    mercutio.send("<presence to='juliet@localhost' type='subscribe'/>");
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      const r = await t.server.rosters.load("juliet", "localhost");
      if (r.pending.has("mercutio@localhost")) break;
      await new Promise((r) => setTimeout(r, 20));
    }

    juliet.clear();
    juliet.send("<presence/>");
    for (const c of contacts) {
      await juliet.waitFor(new RegExp(`type="subscribe" from="${c}@localhost"`), 2000);
    }
    const roster = await t.server.rosters.load("juliet", "localhost");
    assert.deepEqual(
      [...roster.pending.keys()].sort(),
      contacts.map((c) => `${c}@localhost`).sort(),
    );
    juliet.close();
    await new Promise((r) => setTimeout(r, 200));
    const stored = await t.server.rosters.load("juliet", "localhost"); // from storage now
    assert.equal(stored.pending.size, 3);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
});
