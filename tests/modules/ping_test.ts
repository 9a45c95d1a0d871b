/** XEP-0199: pings to the host and to accounts' bare JIDs, answered as Prosody answers them. */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

Deno.test("ping: the server answers for the host and for bare JIDs, one's own included", async () => {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const c = await RawClient.connect(t.port);
  try {
    for (const u of ["romeo", "juliet"]) await t.server.users("localhost")!.createUser(u, "pw");
    await c.login("juliet", "pw", "a");
    const ping = async (id: string, to?: string) => {
      const attr = to === undefined ? "" : ` to='${to}'`;
      c.send(`<iq type='get' id='${id}'${attr}><ping xmlns='urn:xmpp:ping'/></iq>`);
      return (await c.waitFor(new RegExp(`<iq [^>]*id="${id}"(?:[^>]*\\/>|.*?<\\/iq>)`, "s")))[0];
    };
    // Prosody 0.12.3 sent, byte for byte apart from quoting and attribute order:
    // <iq id='p1' to='juliet@localhost/a' type='result'/>
    assert.equal(
      await ping("p1", "juliet@localhost"),
      `<iq id="p1" to="juliet@localhost/a" type="result"/>`,
    );
    assert.equal(await ping("p2"), `<iq id="p2" to="juliet@localhost/a" type="result"/>`);
    // <iq id='p3' to='juliet@localhost/a' type='result' from='romeo@localhost'/>
    const other = await ping("p3", "romeo@localhost");
    assert.match(other, /type="result"/);
    assert.match(other, /from="romeo@localhost"/);
    assert.match(
      await ping("p4", "localhost"),
      /from="localhost"[^>]*type="result"|type="result"[^>]*from="localhost"/,
    );
  } finally {
    c.close();
    await t.stop();
  }
});
