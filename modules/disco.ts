/**
 * Service Discovery (XEP-0030): disco#info and disco#items of the host (its
 * identities and the features modules add with `module.addFeature`), and of
 * user accounts (`account/registered`, with the disco features): to the
 * account's owner and to contacts entitled to its presence, others get
 * `service-unavailable` as Prosody answers. Nodes are answered through the
 * `host-disco-info-node` / `host-disco-items-node` events.
 *
 * Options: `disco_items` (a list of `{ jid, name? }` or `[jid, name]` items
 * to list on the host), `server_name` (the identity's name, "Cadence").
 * @module
 */
import type { Identity, Module } from "../core/moduleapi.ts";
import type { Origin, StanzaEvent } from "../core/router.ts";
import { bare } from "../core/jid.ts";
import type { Stanza } from "../core/xml/stanza.ts";

const INFO = "http://jabber.org/protocol/disco#info";
const ITEMS = "http://jabber.org/protocol/disco#items";

export default function disco(module: Module) {
  module.addFeature(INFO);
  module.addFeature(ITEMS);
  const serverName = module.getOptionString("server_name", "Cadence")!;

  function infoReply(stanza: Stanza, node?: string): Stanza {
    return stanza.reply().tag("query", node ? { xmlns: INFO, node } : { xmlns: INFO });
  }

  module.hook(`iq-get/host/${INFO}:query`, (event: StanzaEvent) => {
    const { origin, stanza } = event;
    const node = stanza.getChild("query", INFO)!.attrs.node;
    const reply = infoReply(stanza, node);
    if (node) {
      const e = { origin, stanza, reply, node, exists: false };
      if (module.fireEvent("host-disco-info-node", e) === undefined && !e.exists) {
        origin.send(stanza.errorReply("cancel", "item-not-found"));
        return true;
      }
      origin.send(reply);
      return true;
    }
    const identities = [
      { category: "server", type: "im", name: serverName },
      ...module.hostItems<Identity>("identity"),
    ];
    const seen = new Set<string>();
    for (const id of identities) {
      const key = `${id.category}/${id.type}/${id.name ?? ""}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const attrs: Record<string, string> = { category: id.category, type: id.type };
      if (id.name) attrs.name = id.name;
      reply.tag("identity", attrs).up();
    }
    for (const feature of new Set(module.hostItems<string>("feature")).values()) {
      reply.tag("feature", { var: feature }).up();
    }
    for (const form of module.hostItems<Stanza>("extension")) reply.addChild(form.clone());
    origin.send(reply);
    return true;
  });

  module.hook(`iq-get/host/${ITEMS}:query`, (event: StanzaEvent) => {
    const { origin, stanza } = event;
    const node = stanza.getChild("query", ITEMS)!.attrs.node;
    const reply = stanza.reply().tag("query", node ? { xmlns: ITEMS, node } : { xmlns: ITEMS });
    if (node) {
      const e = { origin, stanza, reply, node, exists: false };
      if (module.fireEvent("host-disco-items-node", e) === undefined && !e.exists) {
        origin.send(stanza.errorReply("cancel", "item-not-found"));
        return true;
      }
      origin.send(reply);
      return true;
    }
    for (const item of configuredItems()) reply.tag("item", item).up();
    for (const component of module.components()) {
      if (component.endsWith("." + module.host)) reply.tag("item", { jid: component }).up();
    }
    module.fireEvent("host-disco-items", { origin, stanza, reply });
    origin.send(reply);
    return true;
  });

  function configuredItems(): Record<string, string>[] {
    const out: Record<string, string>[] = [];
    for (const it of module.getOptionArray<unknown>("disco_items")) {
      if (Array.isArray(it)) out.push(it[1] ? { jid: it[0], name: it[1] } : { jid: it[0] });
      else if (it && typeof it === "object" && "jid" in it) {
        out.push(it as Record<string, string>);
      }
    }
    return out;
  }

  /**
   * Accounts answer for themselves to their owner and to contacts entitled
   * to their presence, as Prosody's do; others learn nothing, not even
   * whether the account exists. Returns the account's username, or
   * undefined after sending the error.
   */
  async function account(event: StanzaEvent): Promise<string | undefined> {
    const { origin, stanza } = event;
    const username = event.to_user!; // the asker's own when there is no `to`
    const asker = bare(stanza.attrs.from ?? "");
    const allowed = stanza.attrs.to === undefined || asker === `${username}@${module.host}` ||
      await module.rosters.isContactSubscribed(username, module.host, asker);
    if (!allowed || !await module.users.userExists(username)) {
      origin.send(stanza.errorReply("cancel", "service-unavailable"));
      return undefined;
    }
    return username;
  }

  /** A reply about an account; one's own gets the account as `from` (Prosody: for Psi). */
  function accountReply(origin: Origin, stanza: Stanza, xmlns: string): Stanza {
    const reply = stanza.reply();
    reply.attrs.from ??= `${origin.username}@${module.host}`;
    return reply.tag("query", { xmlns });
  }

  // An account's disco#info: what the server offers on the user's behalf.
  module.hook(`iq-get/bare/${INFO}:query`, async (event: StanzaEvent) => {
    const { origin, stanza } = event;
    if (stanza.attrs.to === undefined && origin.username === undefined) return;
    if (stanza.getChild("query", INFO)!.attrs.node) return; // left to other modules
    if (await account(event) === undefined) return true;
    // XEP-0030 §3.1: an entity that answers disco lists both disco features.
    const reply = accountReply(origin, stanza, INFO)
      .tag("identity", { category: "account", type: "registered" }).up()
      .tag("feature", { var: INFO }).up()
      .tag("feature", { var: ITEMS }).up();
    module.fireEvent("account-disco-info", { origin, stanza, reply });
    origin.send(reply);
    return true;
  });

  module.hook(`iq-get/bare/${ITEMS}:query`, async (event: StanzaEvent) => {
    const { origin, stanza } = event;
    if (stanza.attrs.to === undefined && origin.username === undefined) return;
    if (await account(event) === undefined) return true;
    const reply = accountReply(origin, stanza, ITEMS);
    await module.fireEvent("account-disco-items", { origin, stanza, reply }); // (pep's are async)
    origin.send(reply);
    return true;
  });
}
