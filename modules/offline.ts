/**
 * Offline messages (XEP-0160): `chat` and `normal` messages for a user with
 * no available resource are stored (archive store `offline`, so they survive
 * a restart) and delivered, in the order they arrived, with an XEP-0203
 * `<delay/>` stamp, when the user next sends initial presence with a
 * non-negative priority. Option `offline_message_limit` (default 500) caps
 * a user's stored messages; past it the sender gets `resource-constraint`.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { Origin } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import type { Stanza } from "../core/xml/stanza.ts";

const DELAY_NS = "urn:xmpp:delay";

export default function offline(module: Module) {
  const store = module.openStore(undefined, "archive");
  const limit = module.getOptionInteger("offline_message_limit", 500, { min: 1 });
  module.addFeature("msgoffline");

  module.hook(
    "message/offline/handle",
    async (event: { username: string; origin: Origin; stanza: Stanza }) => {
      const { username, origin, stanza } = event;
      const type = stanza.attrs.type ?? "normal";
      if (type !== "chat" && type !== "normal") return;
      if (await store.count(username) >= limit) {
        origin.send(
          stanza.errorReply("wait", "resource-constraint", "Offline message storage is full"),
        );
        return true;
      }
      const copy = stanza.clone();
      const stamp = new Date().toISOString();
      copy.tag("delay", { xmlns: DELAY_NS, from: module.host, stamp }).up();
      await store.append(username, null, copy, Date.now() / 1000, stanza.attrs.from ?? "");
      return true;
    },
  );

  module.hook("message/offline/broadcast", async ({ origin }: { origin: Session }) => {
    const username = origin.username!;
    const items = await store.find(username);
    const delivered: string[] = [];
    for (const item of items) {
      if (origin.destroyed) break; // keep the rest for next time
      origin.send(item.stanza);
      delivered.push(item.id);
    }
    if (delivered.length) await store.delete(username, { ids: delivered });
    return true;
  });
}
