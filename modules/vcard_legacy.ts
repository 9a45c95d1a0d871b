/**
 * Keeps vcard-temp (XEP-0054) and the PEP profile in step, as Prosody's
 * mod_vcard_legacy does. A legacy client that sets its vCard publishes, in
 * PEP, its photo as the avatar (XEP-0084: `urn:xmpp:avatar:data` and
 * `:metadata`, item id the image's SHA-1), its fields as the vCard4
 * (XEP-0292, node `urn:xmpp:vcard4`) and its NICKNAME as the user nickname
 * (XEP-0172). A vCard asked for shows, to whoever may read those PEP
 * nodes (their access model decides, not vcard-temp's openness), the
 * vCard4's fields and the PEP avatar over what vcard-temp stored, so a
 * client that only speaks PEP is seen by one that only speaks vcard-temp.
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
import { CONVERTED_FIELDS, fromVcard4, toVcard4 } from "../core/xml/vcard.ts";
import { VCARD4_NODE } from "./vcard4.ts";

const VCARD = "vcard-temp";
const DATA = "urn:xmpp:avatar:data";
const METADATA = "urn:xmpp:avatar:metadata";
const NICK = "http://jabber.org/protocol/nick";

export default async function vcardLegacy(module: Module) {
  const pep = await module.depends<PepExports>("pep");
  await module.depends("vcard");
  await module.depends("vcard4");
  const vcards = module.openStore<string>("vcard", "keyval");
  const maxSize = module.getOptionInteger("vcard_max_size", 32 * 1024, { min: 1024 });

  // A legacy client sets its vCard: its photo becomes the PEP avatar.
  module.hook(`iq/bare/${VCARD}:vCard`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    if (stanza.attrs.type !== "set" || stanza.attrs.to !== undefined) return;
    const vcard = stanza.getChild("vCard", VCARD)!;
    if (new TextEncoder().encode(vcard.toString()).length > maxSize) return; // vcard refuses it
    const user = origin.username!;
    const nodes = await pep.nodesOf(user);
    const v4 = toVcard4(vcard).toString();
    if (nodes.get(VCARD4_NODE)?.items.at(-1)?.payload !== v4) {
      const r = await pep.publish(user, VCARD4_NODE, "current", v4);
      if ("condition" in r) module.log.warn("vCard4 not published: {c}", { c: r.condition });
    }
    const nickname = vcard.getChildText("NICKNAME")?.trim();
    if (nickname) {
      const nick = element("nick", { xmlns: NICK }).text(nickname).toString();
      if (nodes.get(NICK)?.items.at(-1)?.payload !== nick) {
        const r = await pep.publish(user, NICK, "current", nick);
        if ("condition" in r) module.log.warn("nickname not published: {c}", { c: r.condition });
      }
    }
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
    const current = nodes.get(METADATA)?.items.at(-1);
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

  // A vCard asked for shows the vCard4 fields and the PEP avatar, to whoever
  // may read them (their nodes' access model decides, as for the items).
  module.hook(`iq/bare/${VCARD}:vCard`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    if (stanza.attrs.type !== "get") return;
    const to = stanza.attrs.to;
    const owner = to === undefined ? origin.username : split(to)?.node;
    if (!owner) return;
    const requester = bare(stanza.attrs.from ?? origin.full_jid ?? "");
    const nodes = await pep.nodesOf(owner);
    const profile = nodes.get(VCARD4_NODE)?.items.at(-1);
    const showProfile = profile !== undefined &&
      await pep.mayRead(owner, VCARD4_NODE, requester);
    const info = nodes.get(METADATA)?.items.at(-1);
    const meta = info ? parseXml(info.payload).getChild("info", METADATA) : undefined;
    const data = nodes.get(DATA)?.items.find((i) => i.id === meta?.attrs.id);
    // (No avatar data kept here — a URL, or none — leaves the stored PHOTO.)
    const showAvatar = meta !== undefined && data !== undefined &&
      await pep.mayRead(owner, METADATA, requester) && await pep.mayRead(owner, DATA, requester);
    if (!showProfile && !showAvatar) return; // vcard answers with what it stored
    const stored = await vcards.get(owner);
    const vcard: Stanza = stored ? parseXml(stored) : element("vCard", { xmlns: VCARD });
    // A vCard4 that is only this vCard converted (the legacy client's own save)
    // says less than it: the stored vCard stays whole (TEL and EMAIL types, ORGUNIT…).
    if (showProfile && profile.payload !== toVcard4(vcard).toString()) {
      vcard.children = vcard.children.filter((c) =>
        typeof c === "string" || !CONVERTED_FIELDS.has(c.name)
      );
      vcard.children.push(...fromVcard4(parseXml(profile.payload)).children);
    }
    if (showAvatar) {
      const b64 = parseXml(data!.payload).getText().replace(/\s+/g, "");
      vcard.removeChildren("PHOTO", VCARD);
      vcard.tag("PHOTO").textTag("TYPE", meta!.attrs.type ?? "image/png").textTag("BINVAL", b64)
        .up();
    }
    origin.send(stanza.reply().addChild(vcard));
    return true;
  }, 1);
}
