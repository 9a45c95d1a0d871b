/**
 * Blocking Command (XEP-0191, `urn:xmpp:blocking`): a user's list of
 * blocked JIDs (keyval store `blocklist`, survives restarts). Stanzas from
 * a blocked entity are dropped (presence) or refused with
 * `service-unavailable` (messages, iq get/set); stanzas the user sends to a
 * blocked entity are refused with `not-acceptable`, the text "You have
 * blocked this JID" and the `<blocked xmlns='urn:xmpp:blocking:errors'/>`
 * child, as Prosody does. Changes are pushed to every resource that fetched
 * the list. A contact entitled to the user's presence (subscription `from`
 * or `both`) gets unavailable presence from each available resource when
 * blocked, and their current presence when unblocked (XEP-0191 §3.3–3.5).
 *
 * Lists of users with sessions are cached in memory, so the per-stanza
 * check touches no storage.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { prep } from "../core/jid.ts";
import { iq, presence, type Stanza } from "../core/xml/stanza.ts";
import { isPromise } from "../core/events.ts";

const NS = "urn:xmpp:blocking";
const ERRORS_NS = "urn:xmpp:blocking:errors";

/** Whether `jid` is covered by an item (XEP-0191 §3.4: full, bare, domain/resource, domain). */
function matches(list: Set<string>, jid: string): boolean {
  if (list.size === 0) return false;
  if (list.has(jid)) return true;
  const slash = jid.indexOf("/");
  const bareJid = slash === -1 ? jid : jid.slice(0, slash);
  if (list.has(bareJid)) return true;
  const at = bareJid.indexOf("@");
  if (at === -1) return false;
  const domain = bareJid.slice(at + 1);
  if (slash !== -1 && list.has(domain + jid.slice(slash))) return true;
  return list.has(domain);
}

export default function blocklist(module: Module) {
  const host = module.host;
  const store = module.openStore<string[]>("blocklist", "keyval");
  const cache = new Map<string, Set<string>>();
  module.addFeature(NS);

  function load(username: string): Set<string> | Promise<Set<string>> {
    const cached = cache.get(username);
    if (cached) return cached;
    return store.get(username).then((items) => {
      const set = cache.get(username) ?? new Set(items ?? []);
      if (module.isOnline(username)) cache.set(username, set);
      return set;
    });
  }

  // For fan-outs that bypass the router (core/fanout.ts): the same list, asked per delivery.
  module.hook("resource-bind", async ({ session }) => {
    const list = await load(session.username!);
    session.refuses = (from: string) => matches(list, from);
  });

  module.hook("resource-unbind", ({ session }) => {
    if (!module.isOnline(session.username!)) cache.delete(session.username!);
  });

  // --- the list --------------------------------------------------------------

  module.hook(`iq-get/self/${NS}:blocklist`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    (origin.ext ??= {}).blocklist = true;
    const list = await load(origin.username!);
    const reply = stanza.reply().tag("blocklist", { xmlns: NS });
    for (const jid of list) reply.tag("item", { jid }).up();
    origin.send(reply);
    return true;
  });

  /** Unavailable presence from each available resource of the user to `to`. */
  async function sendUnavailable(username: string, to: string) {
    for (const s of module.availableResources(username)) {
      await module.send(presence({ from: s.full_jid, to, type: "unavailable" }), s);
    }
  }

  /** The presence of each available resource of the user (as kept for probes) to `to`. */
  async function sendCurrentPresence(username: string, to: string) {
    for (const s of module.availableResources(username)) {
      const copy = s.presence!.clone();
      copy.attrs.from = s.full_jid;
      copy.attrs.to = to;
      await module.send(copy, s);
    }
  }

  async function change(event: StanzaEvent<Session>, block: boolean) {
    const { origin, stanza } = event;
    const el = stanza.getChild(block ? "block" : "unblock", NS)!;
    const jids: string[] = [];
    for (const item of el.childTags("item", NS)) {
      const jid = item.attrs.jid === undefined ? undefined : prep(item.attrs.jid);
      if (!jid) {
        origin.send(stanza.errorReply("modify", "jid-malformed"));
        return true;
      }
      jids.push(jid);
    }
    if (block && jids.length === 0) {
      origin.send(stanza.errorReply("modify", "bad-request", "Nothing to block"));
      return true;
    }
    const username = origin.username!;
    const list = await load(username);
    const before = new Set(list);
    const changed = block ? jids : (jids.length ? jids : [...list]);
    for (const jid of changed) block ? list.add(jid) : list.delete(jid);
    await store.set(username, [...list]);
    cache.set(username, list);
    origin.send(stanza.reply());
    // XEP-0191 §3.3, §3.4: contacts entitled to the user's presence see it
    // go (blocked) or come back (unblocked); those already so are left alone.
    for (const jid of changed) {
      if (before.has(jid) === block) continue;
      if (!await module.rosters.isContactSubscribed(username, host, jid)) continue;
      await (block ? sendUnavailable(username, jid) : sendCurrentPresence(username, jid));
    }
    // Pushes to the resources that fetched the list.
    const push = iq({ type: "set", id: "block" + Date.now().toString(36) })
      .tag(block ? "block" : "unblock", { xmlns: NS });
    for (const jid of jids) push.tag("item", { jid }).up();
    for (const s of module.resources(username)) {
      if (s.ext?.blocklist !== true) continue;
      push.attrs.to = s.full_jid;
      s.send(push);
    }
    return true;
  }
  module.hook(`iq-set/self/${NS}:block`, (e: StanzaEvent<Session>) => change(e, true));
  module.hook(`iq-set/self/${NS}:unblock`, (e: StanzaEvent<Session>) => change(e, false));

  // --- enforcement -------------------------------------------------------------

  /** Inbound: from a blocked entity to the user. */
  function inbound(event: StanzaEvent) {
    const { stanza } = event;
    if (!stanza.attrs.to || !stanza.attrs.from) return;
    const list = load(event.to_user!);
    if (isPromise(list)) return list.then((l) => refuseInbound(event, l));
    return refuseInbound(event, list);
  }

  function refuseInbound(event: StanzaEvent, list: Set<string>) {
    const { origin, stanza } = event;
    if (!matches(list, stanza.attrs.from!)) return;
    const type = stanza.attrs.type;
    if (
      stanza.name !== "presence" && type !== "error" && type !== "result" && type !== "groupchat"
    ) {
      origin.send(stanza.errorReply("cancel", "service-unavailable"));
    }
    return true;
  }

  /** Outbound: from the user to a blocked entity. */
  function outbound(event: StanzaEvent<Session>) {
    const { origin, stanza } = event;
    const to = stanza.attrs.to;
    if (!to || origin.type !== "c2s") return;
    const list = load(origin.username!);
    if (isPromise(list)) return list.then((l) => refuseOutbound(origin, stanza, l));
    return refuseOutbound(origin, stanza, list);
  }

  function refuseOutbound(origin: Session, stanza: Stanza, list: Set<string>) {
    if (!matches(list, stanza.attrs.to!)) return;
    const type = stanza.attrs.type;
    if (stanza.name !== "presence" && type !== "error" && type !== "result") {
      origin.send(
        stanza.errorReply("cancel", "not-acceptable", "You have blocked this JID")
          .tag("blocked", { xmlns: ERRORS_NS }),
      );
    }
    return true;
  }

  for (const kind of ["message", "presence", "iq"]) {
    for (const dest of ["bare", "full"]) module.hook(`${kind}/${dest}`, inbound, 100);
    for (const dest of ["bare", "full", "host"]) {
      module.hook(`pre-${kind}/${dest}`, outbound, 100);
    }
  }
}
