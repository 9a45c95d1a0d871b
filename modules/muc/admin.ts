/**
 * Managing a room (XEP-0045 §8–10): roles and affiliations through
 * `muc#admin` (kick, voice, moderator; member, admin, owner, ban — each
 * with its notification), the owner's `muc#owner` configuration form and
 * room destruction, and nickname registration (`jabber:iq:register`,
 * §7.10), which reserves a nickname for an affiliated user (as Prosody
 * without `allow_unaffiliated_register`; removing it ends a membership).
 * @module
 */
import type { StanzaEvent } from "../../core/router.ts";
import { bare, prep } from "../../core/jid.ts";
import { element } from "../../core/xml/stanza.ts";
import { buildForm, DATAFORM_NS, readForm } from "../../core/xml/dataform.ts";
import { applyConfigForm, configForm, ROOMCONFIG } from "./config.ts";
import {
  type Affiliation,
  AFFILIATION_RANK,
  affiliationCovers,
  affiliationOf,
  MAX_AFFILIATIONS,
  type Occupant,
  occupantByReal,
  owners,
  type Role,
  roleFor,
  type Room,
  seesRealJids,
} from "./room.ts";
import { ADMIN_NS, OWNER_NS, type Service, USER_NS, userItem } from "./service.ts";
import { broadcastPresence, normaliseNick } from "./occupants.ts";

const REGISTER_NS = "jabber:iq:register";
const REGISTER_FORM = "http://jabber.org/protocol/muc#register";
const AFFILIATIONS = ["owner", "admin", "member", "outcast", "none"];
const ROLES = ["moderator", "participant", "visitor", "none"];
/** Most items in one change. */
const MAX_ITEMS = 100;
const MAX_REASON = 1024;

type Fail = [type: "auth" | "cancel" | "modify" | "wait", condition: string, text?: string];

/** `muc#admin` get: who has an affiliation, or a role. */
export function onAdminGet(room: Room, { origin, stanza }: StanzaEvent): true {
  const from = stanza.attrs.from ?? origin.full_jid ?? "";
  const item = stanza.firstChild()!.getChild("item");
  const me = occupantByReal(room, from);
  const rank = AFFILIATION_RANK[affiliationOf(room, bare(from))];
  const q = element("query", { xmlns: ADMIN_NS });
  const affiliation = item?.attrs.affiliation;
  const role = item?.attrs.role;
  if (affiliation && AFFILIATIONS.includes(affiliation) && affiliation !== "none") {
    // Admins and owners see the lists; members may see the member list (as Prosody).
    const allowed = rank >= AFFILIATION_RANK.admin ||
      (affiliation === "member" && rank >= AFFILIATION_RANK.member);
    if (!allowed) {
      origin.send(stanza.errorReply("auth", "forbidden", "You may not see this list"));
      return true;
    }
    for (const [jid, e] of Object.entries(room.affiliations)) {
      if (e.affiliation !== affiliation) continue;
      const attrs: Record<string, string> = { affiliation, jid };
      if (e.nick) attrs.nick = e.nick;
      q.tag("item", attrs);
      if (e.reason) q.textTag("reason", e.reason);
      q.up();
    }
  } else if (role && ROLES.includes(role) && role !== "none") {
    if (me?.role !== "moderator") {
      origin.send(stanza.errorReply("auth", "forbidden", "Only moderators see roles"));
      return true;
    }
    for (const o of room.occupants.values()) {
      if (o.role !== role) continue;
      q.tag(
        "item",
        userItem(
          affiliationOf(room, o.bareJid),
          o.role,
          seesRealJids(room, me) ? o.bareJid : undefined,
          o.nick,
        ),
      ).up();
    }
  } else {
    origin.send(stanza.errorReply("modify", "bad-request", "Which affiliation or role?"));
    return true;
  }
  origin.send(stanza.reply().addChild(q));
  return true;
}

interface Change {
  target: string;
  kind: "role" | "affiliation";
  value: string;
  reason?: string;
}

/** `muc#admin` set: role and affiliation changes, checked all before any is made. */
export async function onAdminSet(svc: Service, room: Room, { origin, stanza }: StanzaEvent) {
  const from = stanza.attrs.from ?? origin.full_jid ?? "";
  const items = stanza.firstChild()!.tags().filter((c) => c.name === "item");
  const fail = ([type, condition, text]: Fail) => {
    origin.send(stanza.errorReply(type, condition, text));
    return true as const;
  };
  if (items.length === 0 || items.length > MAX_ITEMS) return fail(["modify", "bad-request"]);
  const me = occupantByReal(room, from);
  const myAffiliation = affiliationOf(room, bare(from));
  const changes: Change[] = [];
  for (const item of items) {
    const reason = item.getChildText("reason")?.slice(0, MAX_REASON);
    const { role, affiliation, nick } = item.attrs;
    if (role !== undefined) {
      if (!ROLES.includes(role) || nick === undefined) return fail(["modify", "bad-request"]);
      const target = room.occupants.get(nick);
      if (!target) return fail(["cancel", "item-not-found", "No such occupant"]);
      const why = mayChangeRole(room, me, myAffiliation, target, role as Role);
      if (why) return fail(why);
      changes.push({ target: nick, kind: "role", value: role, reason });
    } else if (affiliation !== undefined) {
      let jid = item.attrs.jid === undefined ? undefined : prep(item.attrs.jid);
      if (jid === undefined && nick !== undefined) jid = room.occupants.get(nick)?.bareJid;
      if (!AFFILIATIONS.includes(affiliation) || !jid) return fail(["modify", "bad-request"]);
      jid = bare(jid);
      const why = mayChangeAffiliation(room, myAffiliation, jid, affiliation as Affiliation);
      if (why) return fail(why);
      changes.push({ target: jid, kind: "affiliation", value: affiliation, reason });
    } else return fail(["modify", "bad-request", "An item needs a role or an affiliation"]);
  }
  // The room keeps an owner.
  const after = new Set(owners(room));
  for (const c of changes) {
    if (c.kind !== "affiliation") continue;
    if (c.value === "owner") after.add(c.target);
    else after.delete(c.target);
  }
  if (after.size === 0) return fail(["cancel", "conflict", "A room needs an owner"]);
  const added =
    changes.filter((c) =>
      c.kind === "affiliation" && c.value !== "none" && !room.affiliations[c.target]
    ).length;
  if (Object.keys(room.affiliations).length + added > MAX_AFFILIATIONS) {
    return fail(["wait", "resource-constraint", "Too many affiliations"]);
  }
  const actor = me?.nick;
  for (const c of changes) {
    if (c.kind === "role") setRole(svc, room, c.target, c.value as Role, actor, c.reason);
    else setAffiliation(svc, room, c.target, c.value as Affiliation, actor, c.reason);
  }
  await svc.save(room);
  origin.send(stanza.reply());
  return true as const;
}

function mayChangeRole(
  room: Room,
  me: Occupant | undefined,
  myAffiliation: Affiliation,
  target: Occupant,
  role: Role,
): Fail | undefined {
  if (me?.role !== "moderator") return ["auth", "forbidden", "Only moderators change roles"];
  const mine = AFFILIATION_RANK[myAffiliation];
  const theirs = AFFILIATION_RANK[affiliationOf(room, target.bareJid)];
  // Granting or taking moderator takes an admin (§9.6); no one acts on a higher rank.
  if ((role === "moderator" || target.role === "moderator") && mine < AFFILIATION_RANK.admin) {
    return ["cancel", "not-allowed", "Only admins and owners change moderators"];
  }
  if (theirs > mine || (theirs >= AFFILIATION_RANK.admin && target !== me && theirs === mine)) {
    return ["cancel", "not-allowed", "You may not change the role of this occupant"];
  }
  // Admins and owners are not kicked or silenced, by anyone (XEP-0045 §8.2, §8.5; Prosody).
  if (theirs >= AFFILIATION_RANK.admin && role !== "moderator") {
    return ["cancel", "not-allowed", "Admins and owners stay moderators"];
  }
  return undefined;
}

function mayChangeAffiliation(
  room: Room,
  myAffiliation: Affiliation,
  jid: string,
  affiliation: Affiliation,
): Fail | undefined {
  const mine = AFFILIATION_RANK[myAffiliation];
  if (mine < AFFILIATION_RANK.admin) {
    return ["auth", "forbidden", "Only admins and owners change affiliations"];
  }
  const theirs = AFFILIATION_RANK[affiliationOf(room, jid)];
  const high = AFFILIATION_RANK.admin;
  if (
    mine === AFFILIATION_RANK.admin && (theirs >= high || AFFILIATION_RANK[affiliation] >= high)
  ) {
    return ["cancel", "not-allowed", "Only owners change admins and owners"];
  }
  return undefined;
}

function setRole(
  svc: Service,
  room: Room,
  nick: string,
  role: Role,
  actor?: string,
  reason?: string,
) {
  const o = room.occupants.get(nick);
  if (!o) return;
  if (role === "none") {
    svc.remove(room, o, { codes: ["307"], actor, reason });
    return;
  }
  o.role = role;
  broadcastPresence(svc, room, o, { actor, reason });
}

function setAffiliation(
  svc: Service,
  room: Room,
  jid: string,
  affiliation: Affiliation,
  actor?: string,
  reason?: string,
) {
  const previous = room.affiliations[jid];
  if (affiliation === "none") delete room.affiliations[jid];
  else {
    room.affiliations[jid] = { affiliation };
    if (previous?.nick && affiliation !== "outcast") room.affiliations[jid].nick = previous.nick;
    if (reason) room.affiliations[jid].reason = reason;
  }
  for (const o of [...room.occupants.values()]) {
    if (!affiliationCovers(jid, o.bareJid)) continue;
    // What applies to the occupant now (its own entry wins over its domain's).
    const now = affiliationOf(room, o.bareJid);
    if (now === "outcast") svc.remove(room, o, { codes: ["301"], actor, reason });
    else if (now === "none" && room.config.membersOnly) {
      svc.remove(room, o, { codes: ["321"], actor, reason });
    } else {
      o.role = roleFor(room, now);
      broadcastPresence(svc, room, o, { actor, reason });
    }
  }
}

/** `muc#owner`: the configuration form, its submission, and destruction. */
export async function onOwner(svc: Service, room: Room, { origin, stanza }: StanzaEvent) {
  const from = stanza.attrs.from ?? origin.full_jid ?? "";
  if (affiliationOf(room, bare(from)) !== "owner") {
    origin.send(stanza.errorReply("auth", "forbidden", "Only owners configure the room"));
    return true;
  }
  const query = stanza.firstChild()!;
  if (stanza.attrs.type === "get") {
    const reply = stanza.reply().tag("query", { xmlns: OWNER_NS }).addChild(configForm(room));
    origin.send(reply);
    return true;
  }
  const destroy = query.getChild("destroy");
  if (destroy) {
    const venue = destroy.attrs.jid === undefined ? undefined : prep(destroy.attrs.jid);
    const d = element("destroy", venue ? { jid: venue } : {});
    const reason = destroy.getChildText("reason");
    if (reason) d.textTag("reason", reason.slice(0, MAX_REASON));
    const password = destroy.getChildText("password");
    if (password) d.textTag("password", password);
    await svc.destroy(room, { codes: [], destroy: d });
    origin.send(stanza.reply());
    return true;
  }
  const x = query.getChild("x", DATAFORM_NS);
  if (!x) {
    origin.send(stanza.errorReply("modify", "bad-request", "A form or a destroy request"));
    return true;
  }
  if (x.attrs.type === "cancel") {
    // Cancelling the first configuration cancels the room (XEP-0045 §10.1.3).
    if (room.locked) await svc.destroy(room);
    origin.send(stanza.reply());
    return true;
  }
  const form = readForm(x);
  if (x.attrs.type !== "submit" || (form.type !== undefined && form.type !== ROOMCONFIG)) {
    origin.send(stanza.errorReply("modify", "bad-request", "Not a room configuration form"));
    return true;
  }
  const r = applyConfigForm(room.config, form, svc.maxHistory, svc.maxOccupants);
  if ("error" in r) {
    origin.send(stanza.errorReply("modify", "not-acceptable", r.error));
    return true;
  }
  const before = room.config;
  room.config = r.config;
  const wasLocked = room.locked;
  room.locked = undefined;
  if (room.lockTimer !== undefined) clearTimeout(room.lockTimer);
  room.lockTimer = undefined;
  await svc.save(room);
  origin.send(stanza.reply());
  // Non-members go when the room becomes members-only (322).
  if (r.config.membersOnly && !before.membersOnly) {
    for (const o of [...room.occupants.values()]) {
      if (affiliationOf(room, o.bareJid) === "none") svc.remove(room, o, { codes: ["322"] });
    }
  }
  if (r.config.moderated !== before.moderated) {
    // Roles follow: participants without membership become visitors, and back.
    for (const o of room.occupants.values()) {
      const role = roleFor(room, affiliationOf(room, o.bareJid));
      if (o.role !== "moderator" && role !== o.role) {
        o.role = role;
        broadcastPresence(svc, room, o);
      }
    }
  }
  if (!wasLocked) {
    const codes = ["104"];
    if (r.config.whois !== before.whois) codes.push(r.config.whois === "anyone" ? "172" : "173");
    if (r.config.archiving !== before.archiving) codes.push(r.config.archiving ? "170" : "171");
    const m = element("message", { from: room.jid, type: "groupchat", id: crypto.randomUUID() });
    const ux = m.tag("x", { xmlns: USER_NS });
    for (const code of codes) ux.tag("status", { code }).up();
    svc.broadcastMessage(room, m.up());
  }
  if (!room.config.persistent && room.occupants.size === 0) await svc.destroy(room);
  return true;
}

/** `jabber:iq:register` on a room: reserving a nickname (XEP-0045 §7.10). */
export async function onRegister(svc: Service, room: Room, { origin, stanza }: StanzaEvent) {
  const from = bare(stanza.attrs.from ?? origin.full_jid ?? "");
  const entry = room.affiliations[from];
  if (entry?.affiliation === "outcast") {
    origin.send(stanza.errorReply("auth", "forbidden", "You are banned from this room"));
    return true;
  }
  // Only the affiliated register (as Prosody without allow_unaffiliated_register): a
  // registration must be no way into a members-only room, nor voice in a moderated one.
  if (!entry) {
    origin.send(
      stanza.errorReply("auth", "registration-required", "Only members may register a nickname"),
    );
    return true;
  }
  const query = stanza.firstChild()!;
  if (stanza.attrs.type === "get") {
    const q = stanza.reply().tag("query", { xmlns: REGISTER_NS });
    if (entry?.nick) q.tag("registered").up().textTag("username", entry.nick);
    else {
      q.textTag("instructions", "Choose the nickname to reserve in this room");
      q.addChild(
        buildForm("form", REGISTER_FORM, [
          { var: "muc#register_roomnick", type: "text-single", label: "Nickname" },
        ]),
      );
    }
    origin.send(q.up());
    return true;
  }
  if (query.getChild("remove")) {
    // A member stops being one, with what follows (321 from a members-only room).
    delete entry.nick;
    if (entry.affiliation === "member") setAffiliation(svc, room, from, "none");
    await svc.save(room);
    origin.send(stanza.reply());
    return true;
  }
  const x = query.getChild("x", DATAFORM_NS);
  const form = x ? readForm(x) : undefined;
  const raw = form?.fields.get("muc#register_roomnick")?.[0] ?? query.getChildText("username");
  const nick = raw === undefined ? undefined : normaliseNick(raw);
  if (
    nick === undefined || (form && form.type !== undefined && form.type !== REGISTER_FORM)
  ) {
    origin.send(stanza.errorReply("modify", "bad-request", "A nickname is required"));
    return true;
  }
  const taken = Object.entries(room.affiliations).some(([j, e]) => e.nick === nick && j !== from);
  const holder = room.occupants.get(nick);
  if (taken || (holder && holder.bareJid !== from)) {
    origin.send(stanza.errorReply("cancel", "conflict", "That nickname is taken"));
    return true;
  }
  entry.nick = nick;
  await svc.save(room);
  origin.send(stanza.reply());
  return true;
}
