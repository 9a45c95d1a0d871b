/**
 * vcard-temp photos and PEP avatars (XEP-0084) stay in step: a legacy
 * client's vCard photo is published as the avatar, a modern client's avatar
 * shows in the vCard.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";
import { parseXml } from "../../core/xml/parser.ts";
import type { Stanza } from "../../core/xml/stanza.ts";

const PUBSUB = "http://jabber.org/protocol/pubsub";

let seq = 0;
async function iq(c: RawClient, type: string, inner: string, to = ""): Promise<Stanza> {
  const id = `v${++seq}`;
  c.send(`<iq type='${type}' id='${id}'${to ? ` to='${to}'` : ""}>${inner}</iq>`);
  const m = await c.waitFor(new RegExp(`<iq [^>]*id="${id}"[^>]*?(/>|>[^]*?</iq>)`));
  return parseXml(m[0]);
}

async function withJuliet(fn: (c: RawClient) => Promise<void>) {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const c = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await c.login("juliet", "pw", "r");
    await fn(c);
  } finally {
    c.close();
    await t.stop();
  }
}

const IMAGE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4, 5, 6, 7, 8]);
const B64 = IMAGE.toBase64();
const SHA1 = createHash("sha1").update(IMAGE).digest("hex");
const items = (node: string) => `<pubsub xmlns='${PUBSUB}'><items node='${node}'/></pubsub>`;

Deno.test("vcard_legacy: a vCard photo becomes the PEP avatar, data and metadata", async () => {
  await withJuliet(async (c) => {
    const set = await iq(
      c,
      "set",
      "<vCard xmlns='vcard-temp'><FN>Juliet</FN><PHOTO><TYPE>image/png</TYPE>" +
        `<BINVAL>${B64.slice(0, 8)}\n${B64.slice(8)}</BINVAL></PHOTO></vCard>`,
    );
    assert.equal(set.attrs.type, "result");
    const meta = (await iq(c, "get", items("urn:xmpp:avatar:metadata"))).toString();
    assert.match(
      meta,
      new RegExp(
        `<item id="${SHA1}"><metadata xmlns="urn:xmpp:avatar:metadata"><info bytes="12" id="${SHA1}" type="image/png"/>`,
      ),
    );
    const data = (await iq(c, "get", items("urn:xmpp:avatar:data"))).toString();
    assert.match(
      data,
      new RegExp(
        `<item id="${SHA1}"><data xmlns="urn:xmpp:avatar:data">${
          B64.replace(/[+/=]/g, "\\$&")
        }</data>`,
      ),
    );
    // The vCard itself is kept as set.
    const vcard = (await iq(c, "get", "<vCard xmlns='vcard-temp'/>")).toString();
    assert.match(vcard, /<FN>Juliet<\/FN>/);
  });
});

Deno.test("vcard_legacy: a PEP avatar shows in the vCard; the rest of the vCard stays", async () => {
  await withJuliet(async (c) => {
    await iq(c, "set", "<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>");
    const pub = (node: string, payload: string) =>
      `<pubsub xmlns='${PUBSUB}'><publish node='${node}'><item id='${SHA1}'>${payload}</item></publish></pubsub>`;
    await iq(
      c,
      "set",
      pub("urn:xmpp:avatar:data", `<data xmlns='urn:xmpp:avatar:data'>${B64}</data>`),
    );
    await iq(
      c,
      "set",
      pub(
        "urn:xmpp:avatar:metadata",
        `<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='12' id='${SHA1}' type='image/webp'/></metadata>`,
      ),
    );
    const vcard = (await iq(c, "get", "<vCard xmlns='vcard-temp'/>")).toString();
    assert.match(vcard, /<FN>Juliet<\/FN>/);
    assert.match(
      vcard,
      new RegExp(
        `<PHOTO><TYPE>image/webp</TYPE><BINVAL>${B64.replace(/[+/=]/g, "\\$&")}</BINVAL></PHOTO>`,
      ),
    );
  });
});

Deno.test("vcard_legacy: the avatar in a vCard follows the avatar nodes' access model", async () => {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const clients: RawClient[] = [];
  try {
    for (const u of ["juliet", "romeo", "nurse"]) {
      await t.server.users("localhost")!.createUser(u, "pw");
    }
    for (const [u, c] of [["juliet", "romeo"], ["romeo", "juliet"]]) {
      await t.server.rosters.modify(u, "localhost", (r) => {
        r.items.set(`${c}@localhost`, { subscription: "both", groups: [] });
        return [`${c}@localhost`];
      });
    }
    const login = async (u: string) => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(u, "pw", "r");
      return c;
    };
    const [juliet, romeo, nurse] = [
      await login("juliet"),
      await login("romeo"),
      await login("nurse"),
    ];
    // A legacy vCard with a photo: published with the default (presence) access model.
    await iq(
      juliet,
      "set",
      `<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>`,
    );
    const pub = (node: string, payload: string) =>
      `<pubsub xmlns='${PUBSUB}'><publish node='${node}'><item id='${SHA1}'>${payload}</item></publish></pubsub>`;
    await iq(
      juliet,
      "set",
      pub("urn:xmpp:avatar:data", `<data xmlns='urn:xmpp:avatar:data'>${B64}</data>`),
    );
    await iq(
      juliet,
      "set",
      pub(
        "urn:xmpp:avatar:metadata",
        `<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='12' id='${SHA1}' type='image/png'/></metadata>`,
      ),
    );
    const vcardOf = async (c: RawClient) =>
      (await iq(c, "get", "<vCard xmlns='vcard-temp'/>", "juliet@localhost")).toString();
    assert.match(await vcardOf(romeo), /<PHOTO><TYPE>image\/png<\/TYPE><BINVAL>/);
    const toNurse = await vcardOf(nurse);
    assert.match(toNurse, /<FN>Juliet<\/FN>/);
    assert.doesNotMatch(toNurse, /PHOTO/);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
});
