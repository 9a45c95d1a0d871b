import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

Deno.test("last activity: answered to contacts, forbidden to others; contact addresses in disco", async () => {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
    contact_info: { abuse: ["mailto:abuse@localhost"], admin: ["xmpp:admin@localhost"] },
  });
  const clients: RawClient[] = [];
  try {
    for (const u of ["romeo", "juliet", "tybalt"]) {
      await t.server.users("localhost")!.createUser(u, "pw");
    }
    // juliet lets romeo see her presence.
    await t.server.rosters.modify("juliet", "localhost", (r) => {
      r.items.set("romeo@localhost", { subscription: "from", groups: [] });
      return ["romeo@localhost"];
    });
    const juliet = await RawClient.connect(t.port);
    clients.push(juliet);
    await juliet.login("juliet", "pw");
    juliet.send("<presence/>");
    await juliet.waitFor(/<presence /);
    juliet.send("<presence type='unavailable'><status>Gone to Mantua</status></presence>");
    await new Promise((r) => setTimeout(r, 30));
    juliet.close();
    for (let i = 0; i < 40 && t.server.sessions.user("juliet", "localhost"); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const romeo = await RawClient.connect(t.port);
    const tybalt = await RawClient.connect(t.port);
    clients.push(romeo, tybalt);
    await romeo.login("romeo", "pw");
    await tybalt.login("tybalt", "pw");
    romeo.send("<iq type='get' id='l1' to='juliet@localhost'><query xmlns='jabber:iq:last'/></iq>");
    const answer = (await romeo.waitFor(/<iq [^>]*id="l1".*?<\/iq>/s))[0];
    assert.match(answer, /<query xmlns="jabber:iq:last" seconds="\d+">Gone to Mantua<\/query>/);
    tybalt.send(
      "<iq type='get' id='l2' to='juliet@localhost'><query xmlns='jabber:iq:last'/></iq>",
    );
    assert.match((await tybalt.waitFor(/<iq [^>]*id="l2".*?<\/iq>/s))[0], /<forbidden /);

    romeo.send(
      "<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    const info = (await romeo.waitFor(/<iq [^>]*id="d1".*?<\/iq>/s))[0];
    assert.match(info, /<value>http:\/\/jabber.org\/network\/serverinfo<\/value>/);
    assert.match(
      info,
      /<field var="abuse-addresses" type="list-multi"><value>mailto:abuse@localhost<\/value><\/field>/,
    );
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
});

Deno.test("last activity: recorded when the last available resource goes unavailable; connected but unavailable answered", async () => {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const clients: RawClient[] = [];
  const login = async (user: string, resource: string) => {
    const c = await RawClient.connect(t.port);
    clients.push(c);
    await c.login(user, "pw", resource);
    return c;
  };
  try {
    for (const u of ["romeo", "juliet", "tybalt"]) {
      await t.server.users("localhost")!.createUser(u, "pw");
    }
    await t.server.rosters.modify("juliet", "localhost", (r) => {
      r.items.set("romeo@localhost", { subscription: "from", groups: [] });
      return ["romeo@localhost"];
    });
    const romeo = await login("romeo", "r");
    let n = 0;
    const last = async (c: RawClient = romeo, to: string | null = "juliet@localhost") => {
      const id = `q${n++}`;
      const attr = to === null ? "" : ` to='${to}'`; // null: about one's own account
      c.send(`<iq type='get' id='${id}'${attr}><query xmlns='jabber:iq:last'/></iq>`);
      return (await c.waitFor(new RegExp(`<iq [^>]*id="${id}"(?:[^>]*\\/>|.*?<\\/iq>)`, "s")))[0];
    };
    const juliet = await login("juliet", "a");
    const juliet2 = await login("juliet", "b");
    const presence = async (c: RawClient, xml: string) => {
      c.clear();
      c.send(xml);
      await c.waitFor(/<presence /); // the user's own copy: broadcast done
    };
    await presence(juliet, "<presence/>");
    await presence(juliet2, "<presence/>");
    assert.match(await last(), /<query xmlns="jabber:iq:last" seconds="0"\/>/);

    // One of two available resources leaving is not the user leaving.
    await presence(juliet, "<presence type='unavailable'><status>brb</status></presence>");
    assert.match(await last(), /<query xmlns="jabber:iq:last" seconds="0"\/>/);

    // The last one leaving is, though both stay connected (Prosody 0.12.3 answered
    // <query xmlns='jabber:iq:last' seconds='1'>Gone</query> here).
    await presence(
      juliet2,
      "<presence type='unavailable'><status>Gone to Mantua</status></presence>",
    );
    assert.match(
      await last(),
      /<query xmlns="jabber:iq:last" seconds="\d+">Gone to Mantua<\/query>/,
    );
    assert.match(
      await last(juliet, null),
      /<query xmlns="jabber:iq:last" seconds="\d+">Gone to Mantua<\/query>/,
    );

    // The last available resource's connection ending is leaving too (no status).
    await presence(juliet2, "<presence/>");
    assert.match(await last(), /seconds="0"\/>/);
    juliet2.close();
    for (let i = 0; i < 40 && t.server.sessions.full.has("juliet@localhost/b"); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.match(await last(), /<query xmlns="jabber:iq:last" seconds="\d+"\/>/);

    // Connected, never available, nothing recorded: 0 seconds, as Prosody answers.
    const tybalt = await login("tybalt", "t");
    assert.match(await last(tybalt, null), /<query xmlns="jabber:iq:last" seconds="0"\/>/);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
});
