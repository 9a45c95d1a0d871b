/** Roster get/set rules, versioning, limits and concurrency (RFC 6121 §2, XEP-0237). */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

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
