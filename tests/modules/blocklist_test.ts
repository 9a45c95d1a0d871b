/** XEP-0191 blocking, both directions, pushes, restart. */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

const OPTIONS = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};

Deno.test("blocking: both directions, pushes to interested resources, survives a restart", async () => {
  let t = await startTestServer(OPTIONS);
  const dataDir = t.dataDir;
  const clients: RawClient[] = [];
  const online = async (user: string, resource: string) => {
    const c = await RawClient.connect(t.port);
    clients.push(c);
    await c.login(user, "pw", resource);
    c.send("<presence/>");
    await c.waitFor(/<presence /);
    c.clear();
    return c;
  };
  try {
    for (const u of ["romeo", "juliet"]) await t.server.users("localhost")!.createUser(u, "pw");
    const juliet = await online("juliet", "a");
    const juliet2 = await online("juliet", "b");
    const romeo = await online("romeo", "r");
    juliet2.send("<iq type='get' id='l1'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    await juliet2.waitFor(/<iq [^>]*id="l1"[^>]*><blocklist xmlns="urn:xmpp:blocking"\/><\/iq>/);

    juliet.send(
      "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></block></iq>",
    );
    await juliet.waitFor(/<iq [^>]*id="b1"[^>]*type="result"/);
    await juliet2.waitFor(
      /<block xmlns="urn:xmpp:blocking"><item jid="romeo@localhost"\/><\/block>/,
    );

    romeo.clear();
    romeo.send("<message to='juliet@localhost' type='chat' id='m1'><body>hi</body></message>");
    assert.match(
      (await romeo.waitFor(/<message [^>]*id="m1".*?<\/message>/s))[0],
      /<service-unavailable /,
    );
    juliet.send("<message to='romeo@localhost/r' type='chat' id='m2'><body>hi</body></message>");
    const refused = (await juliet.waitFor(/<message [^>]*id="m2".*?<\/message>/s))[0];
    assert.match(
      refused,
      /<not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>(<text [^>]*>[^<]*<\/text>)?<blocked xmlns="urn:xmpp:blocking:errors"\/>/,
    );
    romeo.send("<presence to='juliet@localhost'/>");
    juliet.send("<iq type='get' id='e1'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    await juliet.waitFor(/<item jid="romeo@localhost"\/>/);
    assert.doesNotMatch(
      juliet.received + juliet2.received,
      /<message [^>]*from="romeo@localhost\/r" type="chat"|<presence [^>]*from="romeo/,
    );
    for (const c of clients) c.close();
    clients.length = 0;
    await t.stop({ keepData: true });

    t = await startTestServer(OPTIONS, dataDir);
    const j = await online("juliet", "c");
    j.send("<iq type='get' id='l2'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    await j.waitFor(/<item jid="romeo@localhost"\/>/);
    j.send("<iq type='set' id='u1'><unblock xmlns='urn:xmpp:blocking'/></iq>");
    await j.waitFor(/<iq [^>]*id="u1"[^>]*type="result"/);
    const r = await online("romeo", "r2");
    r.send("<message to='juliet@localhost' type='chat'><body>again</body></message>");
    await j.waitFor(/<body>again<\/body>/);
    j.send("<iq type='set' id='x1'><block xmlns='urn:xmpp:blocking'/></iq>");
    assert.match((await j.waitFor(/id="x1".*?<\/iq>/s))[0], /bad-request/);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
});

Deno.test("blocking: entitled contacts see the user go and come back; the refusal explains itself", async () => {
  const t = await startTestServer(OPTIONS);
  const clients: RawClient[] = [];
  const connect = async (user: string, resource: string, status?: string) => {
    const c = await RawClient.connect(t.port);
    clients.push(c);
    await c.login(user, "pw", resource);
    if (status !== undefined) {
      c.send(`<presence><status>${status}</status></presence>`);
      await c.waitFor(new RegExp(`<presence [^>]*from="${user}@localhost/${resource}"`));
    }
    return c;
  };
  try {
    for (const u of ["romeo", "juliet", "tybalt"]) {
      await t.server.users("localhost")!.createUser(u, "pw");
    }
    // romeo may see juliet's presence; tybalt may not.
    await t.server.rosters.modify("juliet", "localhost", (r) => {
      r.items.set("romeo@localhost", { subscription: "from", groups: [] });
      r.items.set("tybalt@localhost", { subscription: "to", groups: [] });
      return ["romeo@localhost", "tybalt@localhost"];
    });
    const romeo = await connect("romeo", "r", "");
    const tybalt = await connect("tybalt", "t", "");
    const juliet = await connect("juliet", "a", "balcony");
    await connect("juliet", "b", "garden");
    await connect("juliet", "c"); // connected, never available: sends nothing
    juliet.send("<iq type='get' id='l1'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    await juliet.waitFor(/id="l1"/);
    const flush = async (c: RawClient, id: string) => {
      c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      await c.waitFor(new RegExp(`id="${id}"`));
    };
    const edit = async (id: string, xml: string, push: RegExp) => {
      romeo.clear();
      juliet.clear();
      juliet.send(`<iq type='set' id='${id}'>${xml}</iq>`);
      await juliet.waitFor(new RegExp(`<iq [^>]*id="${id}"[^>]*type="result"`));
      await juliet.waitFor(push); // pushed after the presence is routed
      await flush(romeo, id + "f");
    };
    const presencesTo = (c: RawClient) =>
      [...c.received.matchAll(
        /<presence [^>]*from="juliet@localhost[^"]*".*?(?:\/>|<\/presence>)/gs,
      )]
        .map((m) => m[0]);

    await edit(
      "b1",
      "<block xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/><item jid='tybalt@localhost'/></block>",
      /<block xmlns="urn:xmpp:blocking"><item jid="romeo@localhost"\/>/,
    );
    const gone = presencesTo(romeo);
    assert.equal(gone.length, 2, gone.join("\n"));
    for (const r of ["a", "b"]) {
      assert.ok(
        gone.some((p) =>
          p.includes(`from="juliet@localhost/${r}"`) && /type="unavailable"/.test(p)
        ),
        gone.join("\n"),
      );
    }

    // A message to a blocked contact: not-acceptable, why, and the blocking condition.
    juliet.send("<message to='romeo@localhost' type='chat' id='m1'><body>x</body></message>");
    const refused = (await juliet.waitFor(/<message [^>]*id="m1".*?<\/message>/s))[0];
    assert.match(
      refused,
      /<error type="cancel"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">You have blocked this JID<\/text><blocked xmlns="urn:xmpp:blocking:errors"\/><\/error>/,
    );

    // Unblocking one contact: the presence of each available resource, as broadcast.
    await edit(
      "u1",
      "<unblock xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></unblock>",
      /<unblock xmlns="urn:xmpp:blocking"><item jid="romeo@localhost"\/>/,
    );
    const back = presencesTo(romeo);
    assert.equal(back.length, 2, back.join("\n"));
    assert.ok(
      back.some((p) => /from="juliet@localhost\/a"[^>]*>.*<status>balcony<\/status>/s.test(p)),
    );
    assert.ok(
      back.some((p) => /from="juliet@localhost\/b"[^>]*>.*<status>garden<\/status>/s.test(p)),
    );
    assert.ok(back.every((p) => !/type=/.test(p.slice(0, p.indexOf(">")))), back.join("\n"));

    // Unblocking an entity that was not blocked changes nothing.
    await edit(
      "u2",
      "<unblock xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></unblock>",
      /<unblock xmlns="urn:xmpp:blocking"><item jid="romeo@localhost"\/><\/unblock>/,
    );
    assert.deepEqual(presencesTo(romeo), []);

    // Unblocking everyone (XEP-0191 §3.5) does the same for each entitled contact.
    await edit(
      "b2",
      "<block xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></block>",
      /<block xmlns="urn:xmpp:blocking"><item jid="romeo@localhost"\/><\/block>/,
    );
    await edit(
      "u3",
      "<unblock xmlns='urn:xmpp:blocking'/>",
      /<unblock xmlns="urn:xmpp:blocking"\/>/,
    );
    assert.equal(presencesTo(romeo).length, 2, romeo.received);

    // tybalt is not entitled to juliet's presence: he saw none of it.
    await flush(tybalt, "tf");
    assert.deepEqual(presencesTo(tybalt), []);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
});
