/**
 * Subscriptions and presence with real clients (npm:@xmpp/client): both
 * ways, pre-approval, refusal, probes after a restart, unavailable on
 * disconnect.
 */
import assert from "node:assert/strict";
import { connectXmpp, type TestXmpp, xml, type XmlElement } from "../helpers/xmppclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const isPresence = (type: string | undefined, from?: string) => (s: XmlElement) =>
  s.is("presence") && s.attrs.type === type && (from === undefined || s.attrs.from === from);
const isPush = (jid: string, check: (item: XmlElement) => boolean) => (s: XmlElement) => {
  if (!s.is("iq") || s.attrs.type !== "set") return false;
  const item = s.getChild("query", "jabber:iq:roster")?.getChild("item");
  return item?.attrs.jid === jid && check(item);
};

async function users(t: TestServer, ...names: string[]) {
  for (const n of names) await t.server.users("localhost")!.createUser(n, "pw");
}

async function online(t: TestServer, name: string, resource = "r"): Promise<TestXmpp> {
  const c = await connectXmpp(t.port, name, "pw", resource);
  await c.roster(); // interested: gets roster pushes
  await c.send(xml("presence"));
  await c.waitFor(isPresence(undefined, c.jid)); // own presence reflected
  return c;
}

/** romeo subscribes to juliet and juliet approves; returns after both saw it. */
async function subscribe(a: TestXmpp, aJid: string, b: TestXmpp, bJid: string) {
  await a.send(xml("presence", { to: bJid, type: "subscribe" }));
  await a.waitFor(isPush(bJid, (i) => i.attrs.ask === "subscribe"));
  await b.waitFor(isPresence("subscribe", aJid));
  await b.send(xml("presence", { to: aJid, type: "subscribed" }));
  await b.waitFor(isPush(aJid, (i) => ["from", "both"].includes(i.attrs.subscription)));
  await a.waitFor(isPush(bJid, (i) => ["to", "both"].includes(i.attrs.subscription)));
  await a.waitFor(isPresence("subscribed", bJid));
}

Deno.test("subscription both ways, then presence flows both ways", async () => {
  const t = await startTestServer();
  const clients: TestXmpp[] = [];
  try {
    await users(t, "romeo", "juliet");
    const romeo = await online(t, "romeo");
    const juliet = await online(t, "juliet");
    clients.push(romeo, juliet);
    await subscribe(romeo, "romeo@localhost", juliet, "juliet@localhost");
    // Approval sends juliet's current presence to romeo.
    await romeo.waitFor(isPresence(undefined, juliet.jid));
    await subscribe(juliet, "juliet@localhost", romeo, "romeo@localhost");
    await juliet.waitFor(isPresence(undefined, romeo.jid));

    await juliet.send(xml("presence", {}, xml("show", {}, "away"), xml("status", {}, "balcony")));
    const p = await romeo.waitFor((s) =>
      isPresence(undefined, juliet.jid)(s) && s.getChildText("show") === "away"
    );
    assert.equal(p.getChildText("show"), "away");
    assert.equal(p.getChildText("status"), "balcony");

    const items = await romeo.roster();
    assert.deepEqual(
      items.map((i: XmlElement) => [i.attrs.jid, i.attrs.subscription]),
      [["juliet@localhost", "both"]],
    );
    // Going offline: the contact sees unavailable from that resource.
    await juliet.stop();
    await romeo.waitFor(isPresence("unavailable", juliet.jid));
  } finally {
    for (const c of clients) await c.stop();
    await t.stop();
  }
});

Deno.test("pre-approval answers a later request at once; refusal leaves no subscription", async () => {
  const t = await startTestServer();
  const clients: TestXmpp[] = [];
  try {
    await users(t, "juliet", "nurse", "tybalt");
    const juliet = await online(t, "juliet");
    const nurse = await online(t, "nurse");
    const tybalt = await online(t, "tybalt");
    clients.push(juliet, nurse, tybalt);

    await juliet.send(xml("presence", { to: "nurse@localhost", type: "subscribed" }));
    await juliet.waitFor(isPush("nurse@localhost", (i) => i.attrs.approved === "true"));
    await nurse.send(xml("presence", { to: "juliet@localhost", type: "subscribe" }));
    await nurse.waitFor(isPresence("subscribed", "juliet@localhost"));
    await nurse.waitFor(isPush("juliet@localhost", (i) => i.attrs.subscription === "to"));
    await juliet.waitFor(isPush("nurse@localhost", (i) => i.attrs.subscription === "from"));
    assert.equal(juliet.received.some(isPresence("subscribe", "nurse@localhost")), false);

    await tybalt.send(xml("presence", { to: "juliet@localhost", type: "subscribe" }));
    await juliet.waitFor(isPresence("subscribe", "tybalt@localhost"));
    await juliet.send(xml("presence", { to: "tybalt@localhost", type: "unsubscribed" }));
    await tybalt.waitFor(isPresence("unsubscribed", "juliet@localhost"));
    await tybalt.waitFor(
      isPush("juliet@localhost", (i) => i.attrs.subscription === "none" && !i.attrs.ask),
    );
  } finally {
    for (const c of clients) await c.stop();
    await t.stop();
  }
});

Deno.test("subscriptions and pending requests survive a restart; probes bring presence", async () => {
  let t = await startTestServer();
  const dataDir = t.dataDir;
  let clients: TestXmpp[] = [];
  try {
    await users(t, "romeo", "juliet", "mercutio");
    const romeo = await online(t, "romeo");
    const juliet = await online(t, "juliet");
    clients.push(romeo, juliet);
    await subscribe(romeo, "romeo@localhost", juliet, "juliet@localhost");
    for (const c of clients) await c.stop();
    clients = [];
    // A request made while juliet is offline is kept for her.
    const mercutio = await online(t, "mercutio");
    await mercutio.send(xml("presence", { to: "juliet@localhost", type: "subscribe" }));
    await mercutio.waitFor(isPush("juliet@localhost", (i) => i.attrs.ask === "subscribe"));
    await mercutio.stop();
    await t.stop({ keepData: true });

    t = await startTestServer({}, dataDir);
    const juliet2 = await online(t, "juliet", "again");
    clients.push(juliet2);
    await juliet2.waitFor(isPresence("subscribe", "mercutio@localhost"));
    const romeo2 = await connectXmpp(t.port, "romeo", "pw", "again");
    clients.push(romeo2);
    await romeo2.send(xml("presence"));
    // romeo's initial presence probes juliet: her presence arrives.
    await romeo2.waitFor(isPresence(undefined, juliet2.jid));
  } finally {
    for (const c of clients) await c.stop();
    await t.stop();
  }
});

Deno.test("roster pushes go only to interested resources; removal cancels both ways", async () => {
  const t = await startTestServer();
  const clients: TestXmpp[] = [];
  try {
    await users(t, "romeo", "juliet");
    const romeo = await online(t, "romeo");
    const juliet = await online(t, "juliet", "a");
    clients.push(romeo, juliet);
    const quiet = await connectXmpp(t.port, "juliet", "pw", "b"); // never fetches the roster
    clients.push(quiet);
    await subscribe(romeo, "romeo@localhost", juliet, "juliet@localhost");
    await subscribe(juliet, "juliet@localhost", romeo, "romeo@localhost");
    await juliet.xmpp.iqCaller.request(
      xml(
        "iq",
        { type: "set" },
        xml(
          "query",
          { xmlns: "jabber:iq:roster" },
          xml("item", { jid: "romeo@localhost", name: "Romeo" }, xml("group", {}, "Montague")),
        ),
      ),
    );
    await juliet.waitFor(isPush("romeo@localhost", (i) => i.attrs.name === "Romeo"));
    assert.equal(
      quiet.received.some((s: XmlElement) => s.is("iq") && s.attrs.type === "set"),
      false,
    );

    await juliet.xmpp.iqCaller.request(
      xml(
        "iq",
        { type: "set" },
        xml(
          "query",
          { xmlns: "jabber:iq:roster" },
          xml("item", { jid: "romeo@localhost", subscription: "remove" }),
        ),
      ),
    );
    await juliet.waitFor(isPush("romeo@localhost", (i) => i.attrs.subscription === "remove"));
    await romeo.waitFor(isPush("juliet@localhost", (i) => i.attrs.subscription === "none"));
    const items = await romeo.roster();
    assert.equal(items[0].attrs.subscription, "none");
  } finally {
    for (const c of clients) await c.stop();
    await t.stop();
  }
});
