/**
 * vcard-temp (XEP-0054): a user sets their own vCard and anyone may fetch a
 * local user's. Stored in the keyval store `vcard` (survives restarts).
 * Option `vcard_max_size` (bytes, default 32768) limits a vCard's size.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { parseXml } from "../core/xml/parser.ts";
import { element } from "../core/xml/stanza.ts";

const NS = "vcard-temp";

export default function vcard(module: Module) {
  const store = module.openStore<string>("vcard", "keyval");
  const maxSize = module.getOptionInteger("vcard_max_size", 32 * 1024, { min: 1024 });
  module.addFeature(NS);

  module.hook(`iq/bare/${NS}:vCard`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    const to = stanza.attrs.to;
    const self = to === undefined;
    const user = self ? origin.username! : to.slice(0, to.indexOf("@"));
    if (stanza.attrs.type === "get") {
      const stored = await store.get(user);
      if (!stored) {
        if (self) origin.send(stanza.reply().addChild(element("vCard", { xmlns: NS })));
        else origin.send(stanza.errorReply("cancel", "item-not-found"));
        return true;
      }
      origin.send(stanza.reply().addChild(parseXml(stored)));
      return true;
    }
    if (!self) {
      origin.send(stanza.errorReply("auth", "forbidden", "You can only set your own vCard"));
      return true;
    }
    const xml = stanza.getChild("vCard", NS)!.toString();
    if (new TextEncoder().encode(xml).length > maxSize) {
      origin.send(
        stanza.errorReply("modify", "not-acceptable", `A vCard may hold at most ${maxSize} bytes`),
      );
      return true;
    }
    await store.set(user, xml);
    origin.send(stanza.reply());
    return true;
  });
}
