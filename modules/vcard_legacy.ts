/**
 * Keeps vcard-temp avatars (XEP-0153 style `<PHOTO/>`) and PEP avatars
 * (XEP-0084) in step, as Prosody's mod_vcard_legacy does for the avatar: a
 * legacy client that sets a vCard with a photo publishes it as
 * `urn:xmpp:avatar:data` and `:metadata` (item id: the SHA-1 of the image);
 * a modern client that publishes an avatar finds it in its vCard for legacy
 * clients. The rest of the vCard stays vcard-temp (`vcard` module).
 * @module
 */
import { createHash } from "node:crypto";
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { parseXml } from "../core/xml/parser.ts";
import { element, type Stanza } from "../core/xml/stanza.ts";
import type { Item } from "../core/pubsub/node.ts";
import type { PepExports } from "./pep.ts";

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

  // A modern client publishes an avatar: its vCard's photo follows.
  module.hook(
    "pep-published",
    async ({ user, node, item }: { user: string; node: string; item: Item }) => {
      if (node !== METADATA) return;
      const info = parseXml(item.payload).getChild("info", METADATA);
      if (!info) return; // an empty metadata: the avatar is gone
      const data = (await pep.nodesOf(user)).get(DATA)?.items.find((i) => i.id === info.attrs.id);
      if (!data) return; // stored elsewhere (a URL): nothing for vcard-temp
      const b64 = parseXml(data.payload).getText().replace(/\s+/g, "");
      const stored = await vcards.get(user);
      const vcard: Stanza = stored ? parseXml(stored) : element("vCard", { xmlns: VCARD });
      const old = vcard.getChild("PHOTO", VCARD);
      if (old?.getChildText("BINVAL", VCARD)?.replace(/\s+/g, "") === b64) return;
      vcard.removeChildren("PHOTO", VCARD);
      vcard.tag("PHOTO").textTag("TYPE", info.attrs.type ?? "image/png").textTag("BINVAL", b64)
        .up();
      const xml = vcard.toString();
      if (new TextEncoder().encode(xml).length > maxSize) return; // too big for a vCard here
      await vcards.set(user, xml);
    },
  );
}
