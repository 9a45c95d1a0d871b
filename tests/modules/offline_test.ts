/** XEP-0160: stored while away, delivered in order with delay stamps, across a restart. */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

const OPTIONS = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  offline_message_limit: 5,
};

Deno.test("offline messages survive a restart and arrive in order with delay stamps", async () => {
  let t = await startTestServer(OPTIONS);
  const dataDir = t.dataDir;
  const romeo = await RawClient.connect(t.port);
  try {
    for (const u of ["romeo", "juliet"]) await t.server.users("localhost")!.createUser(u, "pw");
    await romeo.login("romeo", "pw");
    for (let i = 1; i <= 3; i++) {
      romeo.send(`<message to='juliet@localhost' type='chat'><body>m${i}</body></message>`);
    }
    romeo.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await romeo.waitFor(/id="sync"/);
    for (let i = 4; i <= 6; i++) {
      romeo.send(
        `<message to='juliet@localhost' type='chat' id='m${i}'><body>m${i}</body></message>`,
      );
    }
    // The sixth is over the limit of five.
    const full = (await romeo.waitFor(/<message [^>]*id="m6"[^>]*type="error".*?<\/message>/s))[0];
    assert.match(full, /<resource-constraint /);
    romeo.close();
    await t.stop({ keepData: true });

    t = await startTestServer(OPTIONS, dataDir);
    const juliet = await RawClient.connect(t.port);
    try {
      await juliet.login("juliet", "pw");
      juliet.send("<presence/>");
      await juliet.waitFor(/<body>m5<\/body>/);
      const bodies = [...juliet.received.matchAll(/<body>(m\d)<\/body>/g)].map((m) => m[1]);
      assert.deepEqual(bodies, ["m1", "m2", "m3", "m4", "m5"]);
      assert.match(
        juliet.received,
        /<delay xmlns="urn:xmpp:delay" from="localhost" stamp="\d{4}-\d\d-\d\dT[\d:.]+Z"\/>/,
      );
      // Delivered once: the store is empty now.
      assert.equal(
        await t.server.storage.open("localhost", "offline", "archive").count("juliet"),
        0,
      );
    } finally {
      juliet.close();
    }
  } finally {
    romeo.close();
    await t.stop();
  }
});
