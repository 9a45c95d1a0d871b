/**
 * vCard4 over XEP-0292's iq (`<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'/>`),
 * kept in PEP as Prosody's mod_vcard4 does: a user's vCard4 is the item
 * "current" of their `urn:xmpp:vcard4` node, so a get shows it to whoever
 * the node's access model lets read it (`forbidden` otherwise,
 * `item-not-found` when there is none), and a set publishes it there.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { bare, split } from "../core/jid.ts";
import { parseXml } from "../core/xml/parser.ts";
import { VCARD4 } from "../core/xml/vcard.ts";
import type { PepExports } from "./pep/mod.ts";

/** The PEP node of a user's vCard4 (XEP-0292 §3). */
export const VCARD4_NODE = "urn:xmpp:vcard4";

export default async function vcard4(module: Module) {
  const pep = await module.depends<PepExports>("pep");

  async function get({ origin, stanza }: StanzaEvent<Session>) {
    const to = stanza.attrs.to;
    const owner = to === undefined ? origin.username : split(to)?.node;
    if (!owner) return;
    const requester = bare(stanza.attrs.from ?? origin.full_jid ?? "");
    const item = (await pep.nodesOf(owner)).get(VCARD4_NODE)?.items.at(-1);
    if (!item) {
      // Whether there is none is told only to those who could read it (the default access
      // model: the owner and contacts who see their presence), as Prosody's pubsub does.
      const mine = requester === `${owner}@${module.host}`;
      const contact = (await module.rosters.load(owner, module.host)).items.get(requester);
      const could = mine || contact?.subscription === "from" || contact?.subscription === "both";
      origin.send(
        could
          ? stanza.errorReply("cancel", "item-not-found")
          : stanza.errorReply("auth", "forbidden"),
      );
    } else if (!await pep.mayRead(owner, VCARD4_NODE, requester)) {
      origin.send(stanza.errorReply("auth", "forbidden"));
    } else {
      origin.send(stanza.reply().addChild(parseXml(item.payload)));
    }
    return true;
  }
  module.hook(`iq-get/bare/${VCARD4}:vcard`, get);
  module.hook(`iq-get/self/${VCARD4}:vcard`, get);

  module.hook(`iq-set/self/${VCARD4}:vcard`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    const vcard = stanza.getChild("vcard", VCARD4)!;
    const r = await pep.publish(origin.username!, VCARD4_NODE, "current", vcard.toString());
    if ("condition" in r) {
      const err = stanza.errorReply(r.type, r.condition, r.text);
      origin.send(err);
    } else origin.send(stanza.reply());
    return true;
  });

  module.hook("account-disco-info", ({ origin, stanza, reply }) => {
    if (origin.username === undefined) return;
    if (
      stanza.attrs.to !== undefined && bare(stanza.attrs.to) !== `${origin.username}@${module.host}`
    ) {
      return;
    }
    reply.tag("feature", { var: VCARD4 }).up();
  });
}
