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
      /<not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><blocked xmlns="urn:xmpp:blocking:errors"\/>/,
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
