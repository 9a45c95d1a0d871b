/**
 * Roster management (RFC 6121 §2) with roster versioning (XEP-0237).
 *
 * Get: the whole roster, or an empty result when the client's `ver` is
 * current; the session becomes *interested* and gets pushes from then on.
 * Set: add or update one item (name, groups); `subscription="remove"`
 * removes it and cancels the subscriptions both ways. Option
 * `max_roster_items` (default 1000) limits a roster's size.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import { itemElement, type Roster, ROSTER_NS, type RosterItem } from "../core/rostermanager.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { prep } from "../core/jid.ts";
import { element, presence, type Stanza } from "../core/xml/stanza.ts";

const MAX_NAME = 1023;

export default function roster(module: Module) {
  const rosters = module.rosters;
  const maxItems = module.getOptionInteger("max_roster_items", 1000, { min: 1 });

  module.hook("stream-features", ({ origin, features }) => {
    if (origin.type === "c2s_unbound" || origin.type === "c2s_unauthed") {
      features.addChild(element("ver", { xmlns: "urn:xmpp:features:rosterver" }));
    }
  });

  // The roster is loaded when a resource is bound (session.roster).
  module.hook("resource-bind", async ({ session }) => {
    session.roster = await rosters.load(session.username!, session.host);
  }, 10);

  module.hook(`iq/self/${ROSTER_NS}:query`, async (event: StanzaEvent<Session>) => {
    const { origin, stanza } = event;
    if (stanza.attrs.type === "get") return await rosterGet(origin, stanza);
    return await rosterSet(origin, stanza);
  });

  async function rosterGet(origin: Session, stanza: StanzaEvent["stanza"]) {
    const query = stanza.getChild("query", ROSTER_NS)!;
    const roster = await rosters.load(origin.username!, origin.host);
    origin.roster = roster;
    origin.interested = true;
    const ver = String(roster.version);
    if (query.attrs.ver !== undefined && query.attrs.ver === ver) {
      origin.send(stanza.reply()); // XEP-0237: nothing changed
      return true;
    }
    const reply = stanza.reply().tag("query", { xmlns: ROSTER_NS, ver });
    for (const [jid, item] of roster.items) reply.addChild(itemElement(jid, item));
    origin.send(reply);
    return true;
  }

  async function rosterSet(origin: Session, stanza: StanzaEvent["stanza"]) {
    const items = [...stanza.getChild("query", ROSTER_NS)!.childTags("item", ROSTER_NS)];
    if (items.length !== 1) {
      origin.send(stanza.errorReply("modify", "bad-request", "Exactly one item is required"));
      return true;
    }
    const el = items[0];
    const jid = el.attrs.jid === undefined ? undefined : prep(el.attrs.jid);
    if (!jid || jid.includes("/")) {
      origin.send(stanza.errorReply("modify", "jid-malformed", "The item needs a bare JID"));
      return true;
    }
    if (jid === `${origin.username}@${origin.host}`) {
      origin.send(stanza.errorReply("cancel", "not-allowed", "You cannot add yourself"));
      return true;
    }
    if (el.attrs.subscription === "remove") return await removeItem(origin, stanza, jid);

    const name = el.attrs.name;
    const groups = [...el.childTags("group", ROSTER_NS)].map((g) => g.getText());
    if (groups.some((g) => g === "") || (name !== undefined && name.length > MAX_NAME)) {
      origin.send(stanza.errorReply("modify", "not-acceptable", "Empty group or name too long"));
      return true;
    }
    if (new Set(groups).size !== groups.length) {
      origin.send(stanza.errorReply("modify", "bad-request", "Duplicate group"));
      return true;
    }
    let full = false;
    await rosters.modify(origin.username!, origin.host, (roster: Roster) => {
      const old = roster.items.get(jid);
      if (!old && roster.items.size >= maxItems) {
        full = true;
        return [];
      }
      // The client sets name and groups only; subscription state stays the server's.
      const item: RosterItem = {
        subscription: old?.subscription ?? "none",
        groups,
        ...(name ? { name } : {}),
        ...(old?.ask ? { ask: old.ask } : {}),
        ...(old?.approved ? { approved: true } : {}),
      };
      roster.items.set(jid, item);
      return [jid];
    }, () => origin.send(stanza.reply())); // the result goes out before the push
    if (full) {
      origin.send(
        stanza.errorReply(
          "wait",
          "resource-constraint",
          `A roster holds at most ${maxItems} items`,
        ),
      );
    }
    return true;
  }

  async function removeItem(origin: Session, stanza: StanzaEvent["stanza"], jid: string) {
    const username = origin.username!;
    const bareJid = `${username}@${origin.host}`;
    let removed: RosterItem | undefined;
    let pendingIn = false;
    await rosters.modify(username, origin.host, (roster: Roster) => {
      removed = roster.items.get(jid);
      pendingIn = roster.pending.delete(jid);
      if (!removed) return pendingIn;
      roster.items.delete(jid);
      return [jid];
    }, () => {
      if (removed) origin.send(stanza.reply()); // before the push
    });
    if (!removed) {
      origin.send(stanza.errorReply("cancel", "item-not-found"));
      return true;
    }
    // RFC 6121 §2.5.2: cancel the subscriptions both ways, each stanza routed
    // in turn so that the contact gets them in this order.
    const route = (from: Session, stanza: Stanza) => module.send(stanza, from);
    const s = removed.subscription;
    if (s === "to" || s === "both" || removed.ask) {
      await route(origin, presence({ from: bareJid, to: jid, type: "unsubscribe" }));
    }
    if (s === "from" || s === "both") {
      // The contact sees the user's resources go offline first (RFC 6121 §3.2.2).
      for (const session of module.availableResources(username)) {
        await route(session, presence({ from: session.full_jid, to: jid, type: "unavailable" }));
      }
    }
    if (s === "from" || s === "both" || pendingIn) {
      await route(origin, presence({ from: bareJid, to: jid, type: "unsubscribed" }));
    }
    await module.fireEvent("roster-item-removed", {
      username,
      jid,
      item: removed,
      origin,
    });
    return true;
  }
}
