/**
 * vCard4 (XEP-0292) in PEP, and its conversion with vcard-temp both ways:
 * a legacy vCard is published as the vCard4 and the nickname (XEP-0172);
 * a vCard4 set by a modern client shows in the vcard-temp others ask for,
 * to those the node's access model lets read it.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";
import { parseXml } from "../../core/xml/parser.ts";
import type { Stanza } from "../../core/xml/stanza.ts";

const PUBSUB = "http://jabber.org/protocol/pubsub";
const V4 = "urn:ietf:params:xml:ns:vcard-4.0";

let seq = 0;
async function iq(c: RawClient, type: string, inner: string, to = ""): Promise<Stanza> {
  const id = `v${++seq}`;
  c.send(`<iq type='${type}' id='${id}'${to ? ` to='${to}'` : ""}>${inner}</iq>`);
  const m = await c.waitFor(new RegExp(`<iq [^>]*id="${id}"[^>]*?(/>|>[^]*?</iq>)`));
  return parseXml(m[0]);
}
const errorOf = (r: Stanza) =>
  r.getChild("error")?.tags().filter((c) => c.name !== "text").map((c) => c.name).join(" ");

async function withUsers(fn: (juliet: RawClient, romeo: RawClient) => Promise<void>) {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const clients: RawClient[] = [];
  try {
    for (const u of ["juliet", "romeo"]) {
      await t.server.users("localhost")!.createUser(u, "pw");
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(u, "pw", "r");
    }
    await fn(clients[0], clients[1]);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
}

Deno.test("vcard4: a legacy vCard becomes the vCard4 and the nickname in PEP", async () => {
  await withUsers(async (juliet) => {
    const set = await iq(
      juliet,
      "set",
      "<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN><NICKNAME>Jules</NICKNAME>" +
        "<EMAIL><INTERNET/><USERID>juliet@verona.it</USERID></EMAIL><TEL><NUMBER>+39 045</NUMBER></TEL></vCard>",
    );
    assert.equal(set.attrs.type, "result");
    const v4 = (await iq(juliet, "get", `<vcard xmlns='${V4}'/>`)).getChild("vcard", V4)!;
    assert.equal(v4.getChild("fn")?.getChildText("text"), "Juliet Capulet");
    assert.equal(v4.getChild("nickname")?.getChildText("text"), "Jules");
    assert.equal(v4.getChild("email")?.getChildText("text"), "juliet@verona.it");
    assert.equal(v4.getChild("tel")?.getChildText("uri"), "tel:+39 045");
    const nick = await iq(
      juliet,
      "get",
      `<pubsub xmlns='${PUBSUB}'><items node='http://jabber.org/protocol/nick'/></pubsub>`,
    );
    assert.match(
      nick.toString(),
      /<nick xmlns="http:\/\/jabber.org\/protocol\/nick">Jules<\/nick>/,
    );
  });
});

Deno.test("vcard4: a vCard4 set shows in vcard-temp for those allowed, and is forbidden to others", async () => {
  await withUsers(async (juliet, romeo) => {
    const vcard =
      `<vcard xmlns='${V4}'><fn><text>Juliet</text></fn><note><text>of Verona</text></note></vcard>`;
    assert.equal((await iq(juliet, "set", vcard)).attrs.type, "result");
    // A stranger: the node's default access model is presence.
    assert.equal(
      errorOf(await iq(romeo, "get", `<vcard xmlns='${V4}'/>`, "juliet@localhost")),
      "forbidden",
    );
    const legacyStranger = await iq(
      romeo,
      "get",
      "<vCard xmlns='vcard-temp'/>",
      "juliet@localhost",
    );
    assert.doesNotMatch(legacyStranger.toString(), /of Verona/);
    // Open the node: romeo sees it either way.
    const open = await iq(
      juliet,
      "set",
      `<pubsub xmlns='${PUBSUB}#owner'><configure node='urn:xmpp:vcard4'><x xmlns='jabber:x:data' type='submit'>` +
        `<field var='FORM_TYPE'><value>${PUBSUB}#node_config</value></field>` +
        "<field var='pubsub#access_model'><value>open</value></field></x></configure></pubsub>",
    );
    assert.equal(open.attrs.type, "result");
    const v4 = await iq(romeo, "get", `<vcard xmlns='${V4}'/>`, "juliet@localhost");
    assert.equal(v4.getChild("vcard", V4)?.getChild("fn")?.getChildText("text"), "Juliet");
    const legacy = (await iq(romeo, "get", "<vCard xmlns='vcard-temp'/>", "juliet@localhost"))
      .getChild("vCard", "vcard-temp")!;
    assert.equal(legacy.getChildText("FN"), "Juliet");
    assert.equal(legacy.getChildText("DESC"), "of Verona");
    // No vCard4 at all, asked by a stranger: forbidden, as if there were one.
    assert.equal(
      errorOf(await iq(juliet, "get", `<vcard xmlns='${V4}'/>`, "romeo@localhost")),
      "forbidden",
    );
  });
});

Deno.test("vcard4: a stranger cannot tell whether a vCard4 exists; a contact can", async () => {
  await withUsers(async (juliet, romeo) => {
    // Romeo is in no roster of juliet's: a stranger.
    assert.equal(
      errorOf(await iq(romeo, "get", `<vcard xmlns='${V4}'/>`, "juliet@localhost")),
      "forbidden",
    );
    // Juliet asks of herself: there is none.
    assert.equal(errorOf(await iq(juliet, "get", `<vcard xmlns='${V4}'/>`)), "item-not-found");
  });
});
