/**
 * Presence (RFC 6121 §3 and §4): subscriptions with pre-approval, presence
 * broadcast to contacts and to the user's own resources, probes (sent on
 * initial presence, routed for clients, answered as §4.3.2 says), directed
 * presence, and the unavailable presence sent for a session that ends for any
 * reason. Prosody's mod_presence. Presence sent again later carries a XEP-0203
 * delay stamp of when the user sent it, as Prosody's does.
 *
 * Outbound stanzas from a local client are handled on `pre-presence/*`,
 * inbound ones on `presence/bare` and `presence/full`. Subscription state
 * changes go through the RFC 6121 Appendix A state machine
 * (core/subscription.ts) under the user's roster lock.
 *
 * Only contacts on this server's own hosts get presence until
 * server-to-server connections exist.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import { type Roster, RosterManager } from "../core/rostermanager.ts";
import type { Origin, StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { bare, prep } from "../core/jid.ts";
import { type SubscriptionState, type SubscriptionType, transition } from "../core/subscription.ts";
import { parseXml } from "../core/xml/parser.ts";
import { element, presence, type Stanza } from "../core/xml/stanza.ts";

const SUBSCRIPTION_TYPES = new Set(["subscribe", "subscribed", "unsubscribe", "unsubscribed"]);
/** Addresses one session's directed presence is remembered for. */
const MAX_DIRECTED = 1000;
const DELAY_NS = "urn:xmpp:delay";
const hasFrom = (s?: string) => s === "from" || s === "both";
const hasTo = (s?: string) => s === "to" || s === "both";

/** Applies a new subscription state to the roster; true when the item itself changed. */
function apply(roster: Roster, jid: string, state: SubscriptionState, request?: string): boolean {
  if (state.pendingIn) {
    if (!roster.pending.has(jid)) roster.pending.set(jid, request ?? "");
  } else roster.pending.delete(jid);
  const old = roster.items.get(jid);
  if (!old && state.subscription === "none" && !state.pendingOut && !state.approved) return false;
  const item = old ?? { subscription: "none", groups: [] };
  const before = JSON.stringify(item);
  item.subscription = state.subscription;
  if (state.pendingOut) item.ask = "subscribe";
  else delete item.ask;
  if (state.approved) item.approved = true;
  else delete item.approved;
  roster.items.set(jid, item);
  return JSON.stringify(item) !== before;
}

export default function presenceModule(module: Module) {
  const rosters = module.rosters;
  const host = module.host;

  module.hook("stream-features", ({ origin, features }) => {
    if (origin.type === "c2s_unbound") {
      features.addChild(element("sub", { xmlns: "urn:xmpp:features:pre-approval" }));
    }
  });

  const isLocal = (jid: string) => module.hostType(jid.slice(jid.indexOf("@") + 1)) === "local";
  /** Whether presence can reach a contact: one of ours, or anyone when a module federates (s2s). */
  const federated = () => module.hostItems("federation").length > 0;
  const reachable = (jid: string, s2s: boolean) => s2s || isLocal(jid);
  const available = (username: string) => module.availableResources(username);

  /** Sends a copy of `stanza` addressed to `to`, through the router. */
  function route(origin: Origin | undefined, stanza: Stanza, to: string): Promise<void> {
    const copy = stanza.clone();
    copy.attrs.to = to;
    return module.send(copy, origin);
  }

  /** Routes a stanza from the host and waits until it is handled (keeps the order). */
  function post(stanza: Stanza): Promise<void> {
    return module.send(stanza);
  }

  /**
   * Sends the presence of each of a user's available resources to `to` (as
   * stored: with its delay stamp); returns how many were sent.
   */
  async function sendCurrentPresence(username: string, to: string, origin?: Origin) {
    const resources = available(username);
    for (const s of resources) {
      const copy = s.presence!.clone();
      copy.attrs.from = s.full_jid;
      await route(origin, copy, to);
    }
    return resources.length;
  }

  /** The current presence of a user, or `unavailable` from the bare JID when there is none. */
  async function sendCurrentPresenceOrUnavailable(username: string, to: string) {
    if (await sendCurrentPresence(username, to) > 0) return;
    await post(presence({ from: `${username}@${host}`, to, type: "unavailable" }));
  }

  /** Sends unavailable presence from each of a user's available resources to `to`. */
  async function sendUnavailable(username: string, to: string) {
    for (const s of available(username)) {
      await route(s, presence({ from: s.full_jid, type: "unavailable" }), to);
    }
  }

  // --- outbound: from a local client ------------------------------------------

  async function outbound(event: StanzaEvent<Session>) {
    const { origin, stanza } = event;
    const type = stanza.attrs.type;
    if (origin.type !== "c2s") return;
    if (stanza.attrs.to === undefined) {
      // Undirected presence: the user's own broadcast.
      if (type === undefined || type === "unavailable") await broadcast(origin, stanza);
      return true;
    }
    if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
      await outboundSubscription(origin, stanza, type as SubscriptionType);
      return true;
    }
    if (type === "probe") return undefined; // routed: the contact's server answers
    if (type === undefined || type === "unavailable") {
      // Directed presence, remembered so that going offline undoes it (to a
      // bounded number of addresses: each costs memory and a stanza later).
      const to = stanza.attrs.to;
      if (type === undefined) {
        const directed = origin.directed ??= new Set();
        if (!directed.has(to) && directed.size >= MAX_DIRECTED) {
          origin.send(
            stanza.errorReply(
              "wait",
              "resource-constraint",
              `Directed presence is kept for at most ${MAX_DIRECTED} addresses`,
            ),
          );
          return true;
        }
        directed.add(to);
      } else origin.directed?.delete(to);
    }
    return undefined; // routed as usual
  }
  module.hook("pre-presence/bare", outbound);
  module.hook("pre-presence/full", outbound);
  module.hook("pre-presence/host", outbound);

  async function outboundSubscription(origin: Session, stanza: Stanza, type: SubscriptionType) {
    const contact = bare(stanza.attrs.to!);
    const username = origin.username!;
    const userJid = `${username}@${host}`;
    if (contact === userJid || !contact.includes("@")) return;
    // RFC 6121 §3.1.2: subscription stanzas carry bare JIDs.
    stanza.attrs.to = contact;
    stanza.attrs.from = userJid;
    let before!: SubscriptionState;
    let t!: ReturnType<typeof transition>;
    await rosters.modify(username, host, (roster) => {
      before = RosterManager.stateOf(roster, contact);
      t = transition(before, "out", type);
      if (!t.changed) return [];
      return apply(roster, contact, t.state) ? [contact] : true;
    });
    // A cancelled contact sees the user's resources go offline first (RFC 6121 §3.2.2).
    if (hasFrom(before.subscription) && !hasFrom(t.state.subscription)) {
      await sendUnavailable(username, contact);
    }
    if (t.pass) await module.send(stanza, origin);
    if (type === "subscribed") {
      // As Prosody: the contact gets the user's presence, also when it was
      // subscribed already, and is probed when the user is subscribed to it.
      if (hasFrom(t.state.subscription)) await sendCurrentPresence(username, contact, origin);
      if (hasTo(t.state.subscription)) {
        await module.send(presence({ from: userJid, to: contact, type: "probe" }), origin);
      }
      // A contact newly let in: PEP sends it the user's last items.
      if (!hasFrom(before.subscription) && hasFrom(t.state.subscription)) {
        await module.fireEvent("presence-subscription-approved", { username, contact });
      }
    }
  }

  // --- inbound: to a local user ----------------------------------------------

  async function inbound(event: StanzaEvent) {
    const { stanza } = event;
    const to = stanza.attrs.to;
    if (to === undefined) return true;
    const type = stanza.attrs.type;
    const username = event.to_user!;
    if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
      await inboundSubscription(username, stanza, type as SubscriptionType);
      return true;
    }
    if (type === "probe") {
      await answerProbe(username, stanza);
      return true;
    }
    if (to.includes("/")) {
      // To one resource: delivered if it is connected.
      module.fullSession(to)?.send(stanza);
      return true;
    }
    if (type === "error") return true;
    module.sendToAvailable(username, stanza);
    return true;
  }
  module.hook("presence/bare", inbound, -1);
  module.hook("presence/full", inbound, -1);
  // Subscriptions and probes addressed to the server itself are not for anyone.
  module.hook("presence/host", () => true, -1);

  async function inboundSubscription(username: string, stanza: Stanza, type: SubscriptionType) {
    const from = stanza.attrs.from ? prep(stanza.attrs.from) : undefined;
    if (!from) return;
    const contact = bare(from);
    const userJid = `${username}@${host}`;
    stanza.attrs.to = userJid;
    stanza.attrs.from = contact;
    if (!await module.users.userExists(username)) {
      // RFC 6121 §3.1.3: no such account, so no subscription.
      if (type === "subscribe") {
        await post(presence({ from: userJid, to: contact, type: "unsubscribed" }));
      }
      return;
    }
    let before!: SubscriptionState;
    let t!: ReturnType<typeof transition>;
    await rosters.modify(username, host, (roster) => {
      before = RosterManager.stateOf(roster, contact);
      t = transition(before, "in", type);
      if (!t.changed) return [];
      const request = type === "subscribe" ? stanza.toString() : undefined;
      return apply(roster, contact, t.state, request) ? [contact] : true;
    }, () => {
      // The stanza itself reaches the user before the roster push, as with Prosody.
      if (t.pass) module.sendToAvailable(username, stanza);
    });
    const fromBefore = hasFrom(before.subscription);
    const fromAfter = hasFrom(t.state.subscription);
    if (type === "subscribe") {
      if (t.autoReplySubscribed) {
        // Subscribed already (RFC 6121 §3.1.3): say so, with the current presence.
        await post(presence({ from: userJid, to: contact, type: "subscribed" }));
        await sendCurrentPresenceOrUnavailable(username, contact);
        return;
      }
      if (t.autoApprove) {
        await post(presence({ from: userJid, to: contact, type: "subscribed" }));
        if (!fromBefore && fromAfter) {
          await module.fireEvent("presence-subscription-approved", { username, contact });
        }
      } else {
        // A request waiting for the user is acknowledged as Prosody does.
        await post(presence({ from: userJid, to: contact, type: "unavailable" }));
      }
    }
    if (!fromBefore && fromAfter) await sendCurrentPresence(username, contact);
    if (fromBefore && !fromAfter) await sendUnavailable(username, contact);
  }

  /** RFC 6121 §4.3.2: a probe is answered with presence, `unavailable` or `unsubscribed`. */
  async function answerProbe(username: string, stanza: Stanza) {
    const prober = stanza.attrs.from;
    if (!prober) return;
    const userJid = `${username}@${host}`;
    const proberBare = bare(prober);
    if (proberBare !== userJid && !await rosters.isContactSubscribed(username, host, proberBare)) {
      // Not subscribed, or no such account: the prober's server can drop a stale subscription.
      await post(presence({ from: userJid, to: proberBare, type: "unsubscribed" }));
      return;
    }
    await sendCurrentPresenceOrUnavailable(username, prober);
  }

  // --- the user's own presence ---------------------------------------------------

  async function broadcast(origin: Session, stanza: Stanza) {
    const username = origin.username!;
    const userJid = `${username}@${host}`;
    const isAvailable = stanza.attrs.type === undefined;
    const initial = isAvailable && origin.presence === undefined;
    stanza.attrs.from = origin.full_jid;
    delete stanza.attrs.to;
    if (isAvailable) {
      const p = Number.parseInt(stanza.getChildText("priority") ?? "0", 10);
      origin.priority = Number.isNaN(p) ? 0 : Math.max(-128, Math.min(127, p));
      origin.presence = stamped(stanza);
    } else {
      origin.presence = undefined;
    }
    const roster = await rosters.load(username, host);
    // To contacts subscribed to the user's presence.
    const s2s = federated();
    for (const [jid, item] of roster.items) {
      if (hasFrom(item.subscription) && reachable(jid, s2s)) await route(origin, stanza, jid);
    }
    // To the user's own available resources (the sender included, RFC 6121 §4.2.2).
    const copy = stanza.clone();
    copy.attrs.to = userJid;
    module.sendToAvailable(username, copy);
    if (!origin.presence) origin.send(copy); // going unavailable: it still hears itself
    if (initial) await initialPresence(origin, roster, stanza);
    if (!isAvailable && origin.directed) {
      // Undo directed presence (RFC 6121 §4.6.3).
      for (const jid of origin.directed) {
        const item = roster.items.get(bare(jid));
        if (!hasFrom(item?.subscription)) await route(origin, stanza, jid);
      }
      origin.directed = undefined;
    }
  }

  /**
   * The presence kept for sending again later (to probes, new contacts, new
   * resources): stamped with when it was sent (XEP-0203), as Prosody does.
   */
  function stamped(stanza: Stanza): Stanza {
    const kept = stanza.clone().removeChildren("delay", DELAY_NS);
    const stamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    return kept.tag("delay", { xmlns: DELAY_NS, from: host, stamp }).up();
  }

  async function initialPresence(origin: Session, roster: Roster, stanza: Stanza) {
    const username = origin.username!;
    // Probes: the current presence of contacts the user is subscribed to.
    const s2s = federated();
    for (const [jid, item] of roster.items) {
      if (!hasTo(item.subscription) || !reachable(jid, s2s)) continue;
      await module.send(presence({ from: origin.full_jid, to: jid, type: "probe" }), origin);
    }
    // The user's other resources.
    for (const s of available(username)) {
      if (s === origin) continue;
      const copy = s.presence!.clone();
      copy.attrs.from = s.full_jid;
      copy.attrs.to = origin.full_jid;
      origin.send(copy);
    }
    // Subscription requests that arrived while the user was away (RFC 6121 §3.1.3).
    for (const [jid, xml] of roster.pending) {
      const request = xml
        ? parseXml(xml)
        : presence({ from: jid, to: `${username}@${host}`, type: "subscribe" });
      origin.send(request);
    }
    await module.fireEvent("presence/initial", { origin, stanza });
    if (origin.priority >= 0) await module.fireEvent("message/offline/broadcast", { origin });
  }

  // A session that ends while available goes unavailable (RFC 6121 §4.5.2).
  module.hook("resource-unbind", async ({ session, error }) => {
    if (!session.presence && !session.directed) return;
    const unavailable = presence({ type: "unavailable", from: session.full_jid });
    // As Prosody: contacts see why a resource went without saying goodbye.
    if (error) unavailable.textTag("status", `Disconnected: ${error}`);
    if (session.presence) {
      await broadcast(session, unavailable);
    } else {
      for (const jid of session.directed ?? []) await route(session, unavailable, jid);
      session.directed = undefined;
    }
  });

  // An account removed: its contacts' subscriptions go too.
  module.hookGlobal("user-deleted", async ({ username, host: userHost }) => {
    if (userHost !== host) return;
    const roster = await rosters.load(username, host);
    const userJid = `${username}@${host}`;
    const s2s = federated();
    for (const [jid, item] of roster.items) {
      if (!reachable(jid, s2s)) continue;
      if (hasTo(item.subscription) || item.ask) {
        module.send(presence({ from: userJid, to: jid, type: "unsubscribe" }));
      }
      if (hasFrom(item.subscription)) {
        module.send(presence({ from: userJid, to: jid, type: "unsubscribed" }));
      }
    }
  });
}
