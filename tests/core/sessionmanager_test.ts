/** The session table: binds that race a closing connection never leave a stale entry. */
import assert from "node:assert/strict";
import { RawClient, streamHeader } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

const SLOW_BIND = `
export default (module) => {
  module.hook("pre-resource-bind", () => new Promise((r) => setTimeout(() => r(undefined), 300)));
};
`;

Deno.test("a session closed while a pre-resource-bind handler decides never enters the table", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-slowbind-" });
  await Deno.writeTextFile(`${dir}/slowbind.ts`, SLOW_BIND);
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
    plugin_paths: [dir],
    modules_enabled: ["saslauth", "slowbind"],
  });
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    const c = await RawClient.connect(t.port);
    c.send(streamHeader());
    await c.waitFor(/<\/stream:features>/);
    c.send(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
        btoa("\0juliet\0pw")
      }</auth>`,
    );
    await c.waitFor(/<success/);
    c.send(streamHeader());
    await c.waitFor(/<bind /);
    c.send(
      "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>gone</resource></bind></iq>",
    );
    await new Promise((r) => setTimeout(r, 50));
    c.close(); // while the handler is still deciding
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(t.server.sessions.full.has("juliet@localhost/gone"), false);
    assert.equal(t.server.sessions.user("juliet", "localhost"), undefined);
    // And the account can bind that resource again.
    const d = await RawClient.connect(t.port);
    assert.equal(await d.login("juliet", "pw", "gone"), "juliet@localhost/gone");
    d.close();
  } finally {
    await t.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
