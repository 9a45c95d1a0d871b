/** Private XML storage (XEP-0049) and vcard-temp (XEP-0054): round trips, limits, restart. */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

const OPTIONS = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  vcard_max_size: 2000,
};

Deno.test("private data and vCards round-trip and survive a restart", async () => {
  let t = await startTestServer(OPTIONS);
  const dataDir = t.dataDir;
  let c = await RawClient.connect(t.port);
  try {
    for (const u of ["romeo", "juliet"]) await t.server.users("localhost")!.createUser(u, "pw");
    await c.login("juliet", "pw");
    c.send(
      "<iq type='set' id='p1'><query xmlns='jabber:iq:private'><prefs xmlns='urn:x:prefs'><color>blue</color></prefs></query></iq>",
    );
    await c.waitFor(/<iq [^>]*id="p1"[^>]*type="result"/);
    c.send("<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard></iq>");
    await c.waitFor(/<iq [^>]*id="v1"[^>]*type="result"/);
    c.send(
      `<iq type='set' id='v2'><vCard xmlns='vcard-temp'><DESC>${
        "x".repeat(3000)
      }</DESC></vCard></iq>`,
    );
    assert.match((await c.waitFor(/<iq [^>]*id="v2".*?<\/iq>/s))[0], /not-acceptable/);
    c.send(
      "<iq type='get' id='p0'><query xmlns='jabber:iq:private'><x xmlns='jabber:client'/></query></iq>",
    );
    assert.match((await c.waitFor(/<iq [^>]*id="p0".*?<\/iq>/s))[0], /not-acceptable/);
    c.close();
    await t.stop({ keepData: true });

    t = await startTestServer(OPTIONS, dataDir);
    c = await RawClient.connect(t.port);
    await c.login("juliet", "pw");
    c.send(
      "<iq type='get' id='p2'><query xmlns='jabber:iq:private'><prefs xmlns='urn:x:prefs'/></query></iq>",
    );
    assert.match(
      (await c.waitFor(/<iq [^>]*id="p2".*?<\/iq>/s))[0],
      /<prefs xmlns="urn:x:prefs"><color>blue<\/color><\/prefs>/,
    );
    c.send("<iq type='get' id='v3'><vCard xmlns='vcard-temp'/></iq>");
    assert.match((await c.waitFor(/<iq [^>]*id="v3".*?<\/iq>/s))[0], /<FN>Juliet Capulet<\/FN>/);
    const r = await RawClient.connect(t.port);
    try {
      await r.login("romeo", "pw");
      r.send("<iq type='get' id='v4' to='juliet@localhost'><vCard xmlns='vcard-temp'/></iq>");
      assert.match((await r.waitFor(/<iq [^>]*id="v4".*?<\/iq>/s))[0], /<FN>Juliet Capulet<\/FN>/);
      r.send(
        "<iq type='set' id='v5' to='juliet@localhost'><vCard xmlns='vcard-temp'><FN>X</FN></vCard></iq>",
      );
      assert.match((await r.waitFor(/<iq [^>]*id="v5".*?<\/iq>/s))[0], /forbidden/);
      r.send("<iq type='get' id='v6' to='romeo@localhost'><vCard xmlns='vcard-temp'/></iq>");
      assert.match(
        (await r.waitFor(/<iq [^>]*id="v6"[^>]*>.*?<\/iq>|<iq [^>]*id="v6"[^>]*\/>/s))[0],
        /<vCard xmlns="vcard-temp"\/>/,
      );
    } finally {
      r.close();
    }
  } finally {
    c.close();
    await t.stop();
  }
});
