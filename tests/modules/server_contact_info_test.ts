/** XEP-0157: every field of the serverinfo form, from `contact_info` with Prosody's key names. */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

const NAMES = ["abuse", "admin", "feedback", "sales", "security", "status", "support"];

async function serverInfoForm(contactInfo?: Record<string, string[]>): Promise<string> {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
    ...(contactInfo ? { contact_info: contactInfo } : {}),
  });
  const c = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await c.login("juliet", "pw");
    c.send(
      "<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    return (await c.waitFor(/<x xmlns="jabber:x:data" type="result">.*?<\/x>/s))[0];
  } finally {
    c.close();
    await t.stop();
  }
}

Deno.test("server contact info: every registered field, status-addresses included, in the registry's order", async () => {
  const info = Object.fromEntries(NAMES.map((n) => [n, [`mailto:${n}@localhost`]]));
  info.status = ["https://status.localhost/", "xmpp:status@localhost"];
  const form = await serverInfoForm(info);
  const fields = [...form.matchAll(/<field var="([^"]+)" type="list-multi">(.*?)<\/field>/g)];
  assert.deepEqual(fields.map((m) => m[1]), NAMES.map((n) => `${n}-addresses`));
  for (const [, name, values] of fields) {
    const key = name.replace(/-addresses$/, "");
    assert.equal(values, info[key].map((v) => `<value>${v}</value>`).join(""), name);
  }
});

Deno.test("server contact info: fields with nothing configured are sent empty, as Prosody sends them", async () => {
  const form = await serverInfoForm({ status: ["https://status.localhost/"] });
  // Prosody 0.12.3 sent: <field type='list-multi' var='abuse-addresses'/> … for each empty one.
  for (const n of NAMES.filter((n) => n !== "status")) {
    assert.match(form, new RegExp(`<field var="${n}-addresses" type="list-multi"/>`));
  }
  assert.match(
    form,
    /<field var="status-addresses" type="list-multi"><value>https:\/\/status.localhost\/<\/value><\/field>/,
  );
});
