/**
 * Private XML Storage (XEP-0049, `jabber:iq:private`): a client stores and
 * fetches XML fragments, by name and namespace, for its own account only.
 * Kept in the map store `private` (survives restarts).
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { parseXml } from "../core/xml/parser.ts";

const NS = "jabber:iq:private";
const FORBIDDEN = new Set([NS, "jabber:client", "jabber:server", undefined]);

export default function privateStorage(module: Module) {
  const store = module.openStore<string>("private", "map");
  module.addFeature(NS);

  module.hook(`iq/self/${NS}:query`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    const query = stanza.getChild("query", NS)!;
    const items = query.tags();
    if (items.length === 0 || (stanza.attrs.type === "get" && items.length !== 1)) {
      origin.send(stanza.errorReply("modify", "bad-request", "One element is needed"));
      return true;
    }
    if (items.some((el) => FORBIDDEN.has(el.attrs.xmlns))) {
      origin.send(stanza.errorReply("modify", "not-acceptable", "That namespace is reserved"));
      return true;
    }
    const user = origin.username!;
    if (stanza.attrs.type === "get") {
      const el = items[0];
      const stored = await store.get(user, `{${el.attrs.xmlns}}${el.name}`);
      const reply = stanza.reply().tag("query", { xmlns: NS });
      reply.addChild(stored ? parseXml(stored) : el);
      origin.send(reply);
      return true;
    }
    const values: Record<string, string> = {};
    for (const el of items) values[`{${el.attrs.xmlns}}${el.name}`] = el.toString();
    await store.setKeys(user, values);
    origin.send(stanza.reply());
    return true;
  });
}
