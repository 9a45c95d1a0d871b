/**
 * Presence as RFC 6121 and Prosody put it on the wire, stanza by stanza:
 * probe answers (§4.3.2), probes from clients, subscribe from a contact
 * already subscribed (§3.1.3), the acknowledgement of a new request, the
 * probe after approving again, and the delay stamp on presence sent again.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import type { Subscription } from "../../core/subscription.ts";

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  // elsewhere.example stands for any other server: what leaves for it is not followed here.
  modules_disabled: ["s2s"],
};
const STAMP = /stamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"/;

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

/** Roster push ids and delay stamps vary: they are checked, then masked. */
function normalise(stanza: string): string {
  if (stanza.includes("<delay ")) assert.match(stanza, STAMP);
  return stanza.replace(/ id="push[^"]*"/, ' id="*"').replace(/ stamp="[^"]*"/, ' stamp="*"');
}

/** Waits for exactly `expected` (in order, nothing more), then forgets it. */
async function expectStanzas(c: RawClient, expected: string[], settleMs = 150) {
  const deadline = Date.now() + 5000;
  while (split(c.received).length < expected.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, settleMs)); // anything extra shows up too
  assert.deepEqual(split(c.received).map(normalise), expected);
  c.clear();
}

async function setItem(t: TestServer, user: string, jid: string, subscription: Subscription) {
  await t.server.rosters.modify(user, "localhost", (roster) => {
    roster.items.set(jid, { subscription, groups: [] });
    return [jid];
  });
}

/** Logs in, fetches the roster (interested) and, if `available`, sends initial presence. */
async function online(t: TestServer, clients: RawClient[], user: string, available = true) {
  const c = await RawClient.connect(t.port);
  clients.push(c);
  await c.login(user, "pw", "r");
  c.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>");
  await c.waitFor(/id="roster"/);
  if (available) {
    c.send("<presence/>");
    await c.waitFor(/<presence [^>]*from="[^"]*\/r" to="[^"]*"\/>/);
    await new Promise((r) => setTimeout(r, 100)); // probe answers
  }
  c.clear();
  return c;
}

async function withServer(
  users: string[],
  fn: (t: TestServer, clients: RawClient[]) => Promise<void>,
) {
  const t = await startTestServer(PLAIN);
  const clients: RawClient[] = [];
  try {
    for (const u of users) await t.server.users("localhost")!.createUser(u, "pw");
    await fn(t, clients);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
}

Deno.test("probe: a subscriber gets unavailable when no resource is; others and unknown accounts get unsubscribed", async () => {
  await withServer(["juliet", "romeo", "mercutio"], async (t, clients) => {
    await setItem(t, "juliet", "romeo@localhost", "from");
    await setItem(t, "romeo", "juliet@localhost", "to");
    // Stale: mercutio thinks he has juliet's presence, and that of an account that does not exist.
    await setItem(t, "mercutio", "juliet@localhost", "to");
    await setItem(t, "mercutio", "nobody@localhost", "to");

    // juliet is offline: romeo's initial presence probes her.
    const romeo = await online(t, clients, "romeo", false);
    romeo.send("<presence/>");
    await expectStanzas(romeo, [
      '<presence from="romeo@localhost/r" to="romeo@localhost"/>',
      '<presence from="juliet@localhost" to="romeo@localhost/r" type="unavailable"/>',
    ]);

    // The unsubscribed answers cancel mercutio's stale subscriptions.
    const mercutio = await online(t, clients, "mercutio", false);
    mercutio.send("<presence/>");
    await expectStanzas(mercutio, [
      '<presence from="mercutio@localhost/r" to="mercutio@localhost"/>',
      '<presence from="juliet@localhost" to="mercutio@localhost" type="unsubscribed"/>',
      '<iq type="set" id="*" to="mercutio@localhost/r"><query xmlns="jabber:iq:roster" ver="3"><item jid="juliet@localhost" subscription="none"/></query></iq>',
      '<presence from="nobody@localhost" to="mercutio@localhost" type="unsubscribed"/>',
      '<iq type="set" id="*" to="mercutio@localhost/r"><query xmlns="jabber:iq:roster" ver="4"><item jid="nobody@localhost" subscription="none"/></query></iq>',
    ]);
  });
});

Deno.test("probe: a client's probe is routed and answered by the contact's server", async () => {
  await withServer(["juliet", "romeo"], async (t, clients) => {
    await setItem(t, "juliet", "romeo@localhost", "from");
    await setItem(t, "romeo", "juliet@localhost", "to");
    const juliet = await online(t, clients, "juliet");
    const romeo = await online(t, clients, "romeo");
    romeo.send("<presence to='juliet@localhost' type='probe'/>");
    await expectStanzas(romeo, [
      '<presence from="juliet@localhost/r" to="romeo@localhost/r"><delay xmlns="urn:xmpp:delay" from="localhost" stamp="*"/></presence>',
    ]);
    juliet.send("<presence type='unavailable'/>");
    await expectStanzas(romeo, [
      '<presence type="unavailable" from="juliet@localhost/r" to="romeo@localhost"/>',
    ]);
    romeo.send("<presence to='juliet@localhost' type='probe'/>");
    await expectStanzas(romeo, [
      '<presence from="juliet@localhost" to="romeo@localhost/r" type="unavailable"/>',
    ]);
  });
});

Deno.test("subscribe from a contact subscribed already: subscribed, then the current presence or unavailable", async () => {
  await withServer(["juliet", "romeo"], async (t, clients) => {
    // juliet's roster says romeo is subscribed; romeo's lost it (so his request goes out).
    await setItem(t, "juliet", "romeo@localhost", "from");
    const juliet = await online(t, clients, "juliet");
    const romeo = await online(t, clients, "romeo");
    romeo.send("<presence to='juliet@localhost' type='subscribe'/>");
    await expectStanzas(romeo, [
      '<iq type="set" id="*" to="romeo@localhost/r"><query xmlns="jabber:iq:roster" ver="1"><item jid="juliet@localhost" subscription="none" ask="subscribe"/></query></iq>',
      '<presence from="juliet@localhost" to="romeo@localhost" type="subscribed"/>',
      '<iq type="set" id="*" to="romeo@localhost/r"><query xmlns="jabber:iq:roster" ver="2"><item jid="juliet@localhost" subscription="to"/></query></iq>',
      '<presence from="juliet@localhost/r" to="romeo@localhost"><delay xmlns="urn:xmpp:delay" from="localhost" stamp="*"/></presence>',
    ]);
    await expectStanzas(juliet, []); // nothing for juliet to decide

    // Again with juliet unavailable (and romeo's item lost again): unavailable from her bare JID.
    juliet.send("<presence type='unavailable'/>");
    await romeo.waitFor(/type="unavailable"/);
    await setItem(t, "romeo", "juliet@localhost", "none");
    await romeo.waitFor(/ver="3"/);
    romeo.clear();
    romeo.send("<presence to='juliet@localhost' type='subscribe'/>");
    await expectStanzas(romeo, [
      '<iq type="set" id="*" to="romeo@localhost/r"><query xmlns="jabber:iq:roster" ver="4"><item jid="juliet@localhost" subscription="none" ask="subscribe"/></query></iq>',
      '<presence from="juliet@localhost" to="romeo@localhost" type="subscribed"/>',
      '<iq type="set" id="*" to="romeo@localhost/r"><query xmlns="jabber:iq:roster" ver="5"><item jid="juliet@localhost" subscription="to"/></query></iq>',
      '<presence from="juliet@localhost" to="romeo@localhost" type="unavailable"/>',
    ]);
  });
});

Deno.test("a new subscribe is acknowledged with unavailable; the approval brings presence with a delay stamp", async () => {
  await withServer(["juliet", "romeo"], async (t, clients) => {
    const juliet = await online(t, clients, "juliet");
    const romeo = await online(t, clients, "romeo");
    romeo.send("<presence to='juliet@localhost' type='subscribe'/>");
    // Prosody: <presence to='romeo@localhost' from='juliet@localhost' type='unavailable'/>
    await expectStanzas(romeo, [
      '<iq type="set" id="*" to="romeo@localhost/r"><query xmlns="jabber:iq:roster" ver="1"><item jid="juliet@localhost" subscription="none" ask="subscribe"/></query></iq>',
      '<presence from="juliet@localhost" to="romeo@localhost" type="unavailable"/>',
    ]);
    await expectStanzas(juliet, [
      '<presence to="juliet@localhost" type="subscribe" from="romeo@localhost"/>',
    ]);

    juliet.send("<presence to='romeo@localhost' type='subscribed'/>");
    // Prosody: ...<delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-12-01T16:30:54Z'/>
    await expectStanzas(romeo, [
      '<presence to="romeo@localhost" type="subscribed" from="juliet@localhost"/>',
      '<iq type="set" id="*" to="romeo@localhost/r"><query xmlns="jabber:iq:roster" ver="2"><item jid="juliet@localhost" subscription="to"/></query></iq>',
      '<presence from="juliet@localhost/r" to="romeo@localhost"><delay xmlns="urn:xmpp:delay" from="localhost" stamp="*"/></presence>',
    ]);
    await expectStanzas(juliet, [
      '<iq type="set" id="*" to="juliet@localhost/r"><query xmlns="jabber:iq:roster" ver="2"><item jid="romeo@localhost" subscription="from"/></query></iq>',
    ]);
  });
});

Deno.test("approving again while subscribed both ways sends presence and probes the contact", async () => {
  await withServer(["juliet", "romeo"], async (t, clients) => {
    await setItem(t, "juliet", "romeo@localhost", "both");
    await setItem(t, "romeo", "juliet@localhost", "both");
    const juliet = await online(t, clients, "juliet");
    const romeo = await online(t, clients, "romeo");
    juliet.clear();
    juliet.send("<presence to='romeo@localhost' type='subscribed'/>");
    await expectStanzas(romeo, [
      '<presence from="juliet@localhost/r" to="romeo@localhost"><delay xmlns="urn:xmpp:delay" from="localhost" stamp="*"/></presence>',
    ]);
    // The probe's answer.
    await expectStanzas(juliet, [
      '<presence from="romeo@localhost/r" to="juliet@localhost"><delay xmlns="urn:xmpp:delay" from="localhost" stamp="*"/></presence>',
    ]);
  });
});

Deno.test("a resource that goes without saying goodbye: contacts get unavailable with the reason", async () => {
  await withServer(["juliet", "romeo"], async (t, clients) => {
    await setItem(t, "juliet", "romeo@localhost", "from");
    await setItem(t, "romeo", "juliet@localhost", "to");
    const romeo = await online(t, clients, "romeo");
    const juliet = await online(t, clients, "juliet");
    await romeo.waitFor(/from="juliet@localhost\/r"/);
    romeo.clear();
    juliet.socket.destroy(); // no </stream:stream>, no unavailable
    await romeo.waitFor(/<\/presence>/);
    assert.match(
      romeo.received,
      /<presence type="unavailable" from="juliet@localhost\/r" to="romeo@localhost"><status>Disconnected: connection closed<\/status><\/presence>/,
    );
  });
});

Deno.test("directed presence is remembered for at most 1,000 addresses; past them it is refused", async () => {
  await withServer(["juliet"], async (t, clients) => {
    const juliet = await online(t, clients, "juliet");
    let burst = "";
    for (let i = 0; i < 1000; i++) burst += `<presence to='room${i}@elsewhere.example'/>`;
    juliet.send(burst);
    juliet.send("<presence to='room1000@elsewhere.example' id='over'/>");
    await juliet.waitFor(/<presence [^>]*id="over"[^>]*type="error"[\s\S]*<resource-constraint /);
    assert.equal(t.server.sessions.full.get("juliet@localhost/r")!.directed!.size, 1000);
    // An address already remembered may still be sent to.
    juliet.clear();
    juliet.send("<presence to='room5@elsewhere.example' id='again'/>");
    juliet.send("<iq type='get' id='ping' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await juliet.waitFor(/id="ping"/);
    assert.doesNotMatch(juliet.received, /id="again"[^>]*type="error"[^]*?<resource-constraint /);
  });
});
