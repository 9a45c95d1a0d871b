/**
 * Keeps vcard-temp avatars (XEP-0153 style `<PHOTO/>`) and PEP avatars
 * (XEP-0084) in step, as Prosody's mod_vcard_legacy does for the avatar: a
 * legacy client that sets a vCard with a photo publishes it as
 * `urn:xmpp:avatar:data` and `:metadata` (item id: the SHA-1 of the image);
 * a vCard asked for shows the PEP avatar to whoever may read the avatar's
 * nodes (their access model decides, not vcard-temp's openness). The rest of
 * the vCard stays vcard-temp (`vcard` module).
 * @module
 */
import { createHash } from "node:crypto";
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { parseXml } from "../core/xml/parser.ts";
import { element, type Stanza } from "../core/xml/stanza.ts";
import { bare, split } from "../core/jid.ts";
import type { PepExports } from "./pep/mod.ts";

const VCARD = "vcard-temp";
const DATA = "urn:xmpp:avatar:data";
const METADATA = "urn:xmpp:avatar:metadata";

export default async function vcardLegacy(module: Module) {
  const pep = await module.depends<PepExports>("pep");
  await module.depends("vcard");
  const vcards = module.openStore<string>("vcard", "keyval");
  const maxSize = module.getOptionInteger("vcard_max_size", 32 * 1024, { min: 1024 });

  // A legacy client sets its vCard: its photo becomes the PEP avatar.
  module.hook(`iq/bare/${VCARD}:vCard`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    if (stanza.attrs.type !== "set" || stanza.attrs.to !== undefined) return;
    const vcard = stanza.getChild("vCard", VCARD)!;
    if (new TextEncoder().encode(vcard.toString()).length > maxSize) return; // vcard refuses it
    const photo = vcard.getChild("PHOTO", VCARD);
    const b64 = photo?.getChildText("BINVAL", VCARD)?.replace(/\s+/g, "");
    if (!photo || !b64) return;
    let bytes: Uint8Array;
    try {
      bytes = Uint8Array.fromBase64(b64);
    } catch {
      return; // not base64: stored as given, not converted
    }
    const id = createHash("sha1").update(bytes).digest("hex");
    const type = photo.getChildText("TYPE", VCARD) || "image/png";
    const user = origin.username!;
    const current = (await pep.nodesOf(user)).get(METADATA)?.items.at(-1);
    if (current?.id === id) return; // already the avatar
    const data = element("data", { xmlns: DATA }).text(b64).toString();
    const r = await pep.publish(user, DATA, id, data);
    if ("condition" in r) {
      return module.log.warn("avatar data not published: {c}", { c: r.condition });
    }
    const metadata = element("metadata", { xmlns: METADATA })
      .tag("info", { bytes: String(bytes.length), id, type }).up().toString();
    await pep.publish(user, METADATA, id, metadata);
  }, 1);

  // A vCard asked for shows the PEP avatar, to whoever may see that avatar
  // (its nodes' access model decides, as for the items themselves).
  module.hook(`iq/bare/${VCARD}:vCard`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    if (stanza.attrs.type !== "get") return;
    const to = stanza.attrs.to;
    const owner = to === undefined ? origin.username : split(to)?.node;
    if (!owner) return;
    const requester = bare(origin.full_jid ?? `${origin.username}@${module.host}`);
    const nodes = await pep.nodesOf(owner);
    const info = nodes.get(METADATA)?.items.at(-1);
    if (!info) return;
    const meta = parseXml(info.payload).getChild("info", METADATA);
    const data = nodes.get(DATA)?.items.find((i) => i.id === meta?.attrs.id);
    if (!meta || !data) return; // no avatar kept here (a URL, or none): vcard answers
    if (
      !await pep.mayRead(owner, METADATA, requester) || !await pep.mayRead(owner, DATA, requester)
    ) return;
    const stored = await vcards.get(owner);
    const vcard: Stanza = stored ? parseXml(stored) : element("vCard", { xmlns: VCARD });
    const b64 = parseXml(data.payload).getText().replace(/\s+/g, "");
    vcard.removeChildren("PHOTO", VCARD);
    vcard.tag("PHOTO").textTag("TYPE", meta.attrs.type ?? "image/png").textTag("BINVAL", b64).up();
    origin.send(stanza.reply().addChild(vcard));
    return true;
  }, 1);
}
