/**
 * Occupants coming, going and changing (XEP-0045 §7.1–7.6, §7.14): a
 * presence to `room@service/nick` joins (creating the room if it does
 * not exist and creation is allowed), updates, changes nickname or
 * leaves; every change goes to everyone in the room as the occupant's
 * presence with its `muc#user` item, the real JID only for those allowed
 * to see it, and the status codes of the XEP.
 *
 * One account may be in a room from several clients under one nickname
 * (as Prosody allows): they are one occupant with several sessions.
 * @module
 */
import type { Origin, StanzaEvent } from "../../core/router.ts";
import { bare, prepResource } from "../../core/jid.ts";
import { element, presence, type Stanza } from "../../core/xml/stanza.ts";
import { parseDateTime } from "../../core/datetime.ts";
import { deliver, prepare, type Prepared } from "../../core/fanout.ts";
import {
  affiliationOf,
  type Occupant,
  occupantByReal,
  roleFor,
  type Room,
  seesRealJids,
} from "./room.ts";
import {
  type HistoryRequest,
  MUC_NS,
  OCCUPANT_ID_NS,
  type Removal,
  type Service,
  USER_NS,
  userItem,
} from "./service.ts";

/** Most sessions one account may join a room with under one nickname. */
const MAX_SESSIONS = 16;

/** What an occupant's presence carries of its own: everything but MUC elements. */
function ownChildren(p: Stanza | undefined): Stanza["children"] {
  if (!p) return [];
  return p.children.filter((c) =>
    typeof c !== "string" &&
    !(c.name === "x" && (c.attrs.xmlns === MUC_NS || c.attrs.xmlns === USER_NS)) &&
    c.attrs.xmlns !== OCCUPANT_ID_NS
  );
}

/** The session whose presence is the occupant's (the most recent). */
function lastSession(o: Occupant): [string, Stanza] | undefined {
  let last: [string, Stanza] | undefined;
  for (const entry of o.sessions) last = entry;
  return last;
}

interface PresenceOpts {
  type?: "unavailable";
  /** Status codes for the occupant itself (110 is added) and for everyone else. */
  selfCodes?: string[];
  codes?: string[];
  /** For a nickname change: the new nickname (303). */
  newNick?: string;
  actor?: string;
  reason?: string;
  destroy?: Stanza;
  /** Whose presence it carries (default: the most recent session's). */
  from?: Stanza;
}

/** The occupant's presence, as seen with or without its real JID, for itself or others. */
function occupantPresence(
  room: Room,
  o: Occupant,
  withJid: boolean,
  self: boolean,
  opts: PresenceOpts,
): Stanza {
  const last = lastSession(o);
  const p = presence(opts.type ? { from: o.jid, type: opts.type } : { from: o.jid });
  if (opts.type === undefined) p.children.push(...ownChildren(opts.from ?? last?.[1]));
  else {
    const status = (opts.from ?? last?.[1])?.getChild("status");
    if (status) p.children.push(status);
  }
  const x = element("x", { xmlns: USER_NS });
  if (opts.destroy) x.addChild(opts.destroy);
  x.tag(
    "item",
    userItem(
      affiliationOf(room, o.bareJid),
      o.role,
      withJid || self ? last?.[0] : undefined,
      opts.newNick,
    ),
  );
  if (opts.actor !== undefined) x.tag("actor", { nick: opts.actor }).up();
  if (opts.reason !== undefined) x.textTag("reason", opts.reason);
  x.up();
  const codes = self ? ["110", ...(opts.selfCodes ?? []), ...(opts.codes ?? [])] : opts.codes ?? [];
  for (const code of new Set(codes)) x.tag("status", { code }).up();
  p.addChild(x);
  p.tag("occupant-id", { xmlns: OCCUPANT_ID_NS, id: o.occupantId }).up();
  return p;
}

/** Sends `o`'s presence to every occupant (each sees what it may), itself included. */
export function broadcastPresence(
  svc: Service,
  room: Room,
  o: Occupant,
  opts: PresenceOpts = {},
): void {
  let plain: Prepared | undefined;
  let full: Prepared | undefined;
  for (const other of room.occupants.values()) {
    if (other === o) continue;
    const out = seesRealJids(room, other)
      ? (full ??= prepare(occupantPresence(room, o, true, false, opts)))
      : (plain ??= prepare(occupantPresence(room, o, false, false, opts)));
    for (const jid of other.sessions.keys()) deliver(svc.module, out, jid);
  }
  sendSelf(svc, room, o, opts, [...o.sessions.keys()]);
}

/** The occupant's own presence (with 110) to some of its sessions. */
function sendSelf(svc: Service, room: Room, o: Occupant, opts: PresenceOpts, to: string[]) {
  if (to.length === 0) return;
  const out = prepare(occupantPresence(room, o, true, true, opts));
  for (const jid of to) deliver(svc.module, out, jid);
}

/** Takes an occupant out of the room with every session, telling everyone (kick, ban, …). */
export function removeOccupant(svc: Service, room: Room, o: Occupant, why: Removal): void {
  o.role = "none";
  // Out of the room before anyone is told: an error bounced back at once (a route that
  // fails) then finds no occupant to remove again.
  forget(room, o);
  broadcastPresence(svc, room, o, {
    type: "unavailable",
    codes: why.codes,
    actor: why.actor,
    reason: why.reason,
    destroy: why.destroy,
  });
}

function forget(room: Room, o: Occupant) {
  room.occupants.delete(o.nick);
  for (const jid of o.sessions.keys()) room.byRealJid.delete(jid);
}

/** Why a join is refused: a stanza error. */
type Refusal = [type: "auth" | "cancel" | "modify" | "wait", condition: string, text?: string];

/** Whether `from` may join `room` as `nick` (XEP-0045 §7.2), or why not. */
function mayJoin(
  svc: Service,
  room: Room,
  from: string,
  nick: string,
  x?: Stanza,
): Refusal | undefined {
  const bareJid = bare(from);
  const affiliation = affiliationOf(room, bareJid);
  const privileged = affiliation === "owner" || affiliation === "admin";
  if (room.locked && affiliation !== "owner") {
    return ["cancel", "item-not-found", "This room is locked until its owner configures it"];
  }
  if (affiliation === "outcast") return ["auth", "forbidden", "You are banned from this room"];
  if (room.config.membersOnly && affiliation === "none") {
    return ["auth", "registration-required", "Only members may join this room"];
  }
  const holder = room.occupants.get(nick);
  if (holder && holder.bareJid !== bareJid) {
    return ["cancel", "conflict", "That nickname is already in use"];
  }
  for (const [jid, entry] of Object.entries(room.affiliations)) {
    if (entry.nick === nick && jid !== bareJid) {
      return ["cancel", "conflict", "That nickname is registered by another person"];
    }
  }
  if (room.config.password && x?.getChildText("password") !== room.config.password) {
    return ["auth", "not-authorized", "This room requires a password"];
  }
  if (holder && holder.sessions.size >= MAX_SESSIONS) {
    return ["wait", "resource-constraint", "Too many sessions under this nickname"];
  }
  const max = room.config.maxUsers || svc.maxOccupants;
  if (!holder && !privileged && room.occupants.size >= Math.min(max, svc.maxOccupants)) {
    return ["wait", "service-unavailable", "This room is full"];
  }
  return undefined;
}

/** A nickname as the room keeps it, or undefined when it is not acceptable. */
export function normaliseNick(nick: string): string | undefined {
  const prepped = prepResource(nick);
  if (prepped === undefined || prepped.trim() === "") return undefined;
  return prepped;
}

/** What history the joiner asked for, within the room's limit. */
function historyRequest(room: Room, svc: Service, x: Stanza | undefined): HistoryRequest {
  const limit = Math.min(room.config.historyLength, svc.maxHistory);
  const h = x?.getChild("history");
  if (!h) return { maxstanzas: limit };
  let maxstanzas = limit;
  let since: number | undefined;
  const n = Number(h.attrs.maxstanzas);
  if (h.attrs.maxstanzas !== undefined && Number.isInteger(n) && n >= 0) {
    maxstanzas = Math.min(n, limit);
  }
  const seconds = Number(h.attrs.seconds);
  if (h.attrs.seconds !== undefined && Number.isFinite(seconds) && seconds >= 0) {
    since = Date.now() / 1000 - seconds;
  }
  const s = h.attrs.since === undefined ? undefined : parseDateTime(h.attrs.since);
  if (s !== undefined) since = Math.max(since ?? s, s);
  // (maxchars is not honoured: clients ask for 0 to get none, which maxstanzas=0 also means.)
  if (h.attrs.maxchars === "0") maxstanzas = 0;
  return { maxstanzas, since };
}

export interface JoinHooks {
  /** Whether `from` may create a room. */
  mayCreate(from: string): boolean;
  /** Creates a room (not yet in the service's map). */
  create(name: string, creator: string): Room | undefined;
  /** History for a joining occupant, oldest first. */
  history(room: Room, request: HistoryRequest): Promise<Stanza[]>;
}

/** Handles a presence to `room@service/nick`. */
export async function onOccupantPresence(
  svc: Service,
  hooks: JoinHooks,
  { origin, stanza }: StanzaEvent,
): Promise<true> {
  const to = stanza.attrs.to!;
  const from = stanza.attrs.from ?? origin.full_jid ?? "";
  const type = stanza.attrs.type;
  const slash = to.indexOf("/");
  const roomName = to.slice(0, to.indexOf("@"));
  const requestedNick = to.slice(slash + 1);
  let room = svc.rooms.get(roomName);
  const me = room ? occupantByReal(room, from) : undefined;

  if (type === "error") {
    // An occupant's client bounced something: it is gone (XEP-0045 §18.1.3 "333").
    if (room && me) leave(svc, room, me, from, stanza, ["333"]);
    return true;
  }
  if (type === "unavailable") {
    if (room && me) leave(svc, room, me, from, stanza);
    return true;
  }
  if (type === "probe") {
    // An occupant asks for another's current presence.
    const target = room?.occupants.get(requestedNick);
    if (room && me && target) {
      const out = prepare(
        occupantPresence(room, target, seesRealJids(room, me), target === me, {}),
      );
      deliver(svc.module, out, from);
    }
    return true;
  }
  if (type !== undefined) return true; // subscription requests are not for rooms

  const nick = normaliseNick(requestedNick);
  if (nick === undefined) {
    refuse(origin, stanza, ["modify", "jid-malformed", "Invalid nickname"]);
    return true;
  }
  if (room && me) {
    const session = me.sessions.get(from)!;
    if (nick === me.nick) {
      // A presence update (status, show, caps…).
      if (session !== undefined) me.sessions.delete(from); // keep the latest last
      me.sessions.set(from, stanza);
      broadcastPresence(svc, room, me);
      return true;
    }
    changeNick(svc, room, me, from, nick, origin, stanza);
    return true;
  }

  const x = stanza.getChild("x", MUC_NS);
  let created = false;
  if (!room) {
    if (!hooks.mayCreate(from)) {
      refuse(origin, stanza, ["cancel", "not-allowed", "Room creation is restricted"]);
      return true;
    }
    room = hooks.create(roomName, bare(from));
    if (!room) {
      refuse(origin, stanza, ["wait", "resource-constraint", "Too many rooms"]);
      return true;
    }
    created = true;
  }
  const refusal = mayJoin(svc, room, from, nick, x);
  if (refusal) {
    refuse(origin, stanza, refusal);
    return true;
  }
  await join(svc, hooks, room, from, nick, stanza, x, created);
  return true;
}

function refuse(origin: Origin, stanza: Stanza, [type, condition, text]: Refusal) {
  const to = stanza.attrs.to!;
  const err = stanza.errorReply(type, condition, text, to.slice(0, to.indexOf("/")));
  // The error carries back an empty MUC element (XEP-0045 §7.2.6), not the password sent.
  err.children = err.children.filter((c) => typeof c === "string" || c.attrs.xmlns !== MUC_NS);
  err.children.unshift(element("x", { xmlns: MUC_NS }));
  origin.send(err);
}

async function join(
  svc: Service,
  hooks: JoinHooks,
  room: Room,
  from: string,
  nick: string,
  stanza: Stanza,
  x: Stanza | undefined,
  created: boolean,
) {
  const bareJid = bare(from);
  let o = room.occupants.get(nick);
  if (o === undefined) {
    o = {
      nick,
      jid: `${room.jid}/${nick}`,
      bareJid,
      role: roleFor(room, affiliationOf(room, bareJid)),
      sessions: new Map(),
      occupantId: svc.occupantId(room, bareJid),
    };
  }
  // The joiner's part goes out in one write (the socket is corked until the end).
  const conn = svc.module.fullSession(from)?.conn; // (the same one at the end: resumption may move it)
  conn?.cork();
  try {
    await welcome(svc, hooks, room, o, from, stanza, x, created);
  } finally {
    conn?.uncork();
  }
}

async function welcome(
  svc: Service,
  hooks: JoinHooks,
  room: Room,
  o: Occupant,
  from: string,
  stanza: Stanza,
  x: Stanza | undefined,
  created: boolean,
) {
  const nick = o.nick;
  // 1. Who is here (before the newcomer is in the map, so it is not among them).
  const sees = seesRealJids(room, o);
  for (const other of room.occupants.values()) {
    if (other === o) continue;
    deliver(svc.module, prepare(occupantPresence(room, other, sees, false, {})), from);
  }
  o.sessions.set(from, stanza);
  room.occupants.set(nick, o);
  room.byRealJid.set(from, nick);
  // 2. The newcomer to everyone else, and to itself with 110 (and what is new).
  const selfCodes: string[] = [];
  if (room.config.whois === "anyone") selfCodes.push("100");
  if (created) selfCodes.push("201");
  // (Another client of an occupant: its presence is the occupant's now, the others see it.)
  let plain: Prepared | undefined;
  let full: Prepared | undefined;
  for (const other of room.occupants.values()) {
    if (other === o) continue;
    const out = seesRealJids(room, other)
      ? (full ??= prepare(occupantPresence(room, o, true, false, {})))
      : (plain ??= prepare(occupantPresence(room, o, false, false, {})));
    for (const jid of other.sessions.keys()) deliver(svc.module, out, jid);
  }
  sendSelf(svc, room, o, { selfCodes }, [from]);
  // 3. History, then the subject, empty if none (XEP-0045 §7.2.15–16; a new room: no history).
  const history = created ? [] : await hooks.history(room, historyRequest(room, svc, x));
  for (const h of history) deliver(svc.module, prepare(h), from);
  const subject = room.subject;
  const m = element("message", {
    from: subject?.from ?? room.jid,
    to: from,
    type: "groupchat",
    id: crypto.randomUUID(),
  });
  m.textTag("subject", subject?.text ?? "");
  deliver(svc.module, prepare(m), from);
}

function leave(
  svc: Service,
  room: Room,
  o: Occupant,
  from: string,
  stanza: Stanza,
  codes: string[] = [],
) {
  if (o.sessions.size > 1) {
    // One of several clients leaves: it is told; if its presence was the occupant's, the
    // room now sees the remaining clients' (the most recent).
    const wasShown = lastSession(o)?.[0] === from;
    o.sessions.delete(from);
    room.byRealJid.delete(from);
    const self = occupantPresence(room, o, true, true, { type: "unavailable", codes });
    deliver(svc.module, prepare(self), from);
    if (wasShown) broadcastPresence(svc, room, o);
    return;
  }
  o.role = "none";
  forget(room, o); // (first: see removeOccupant)
  broadcastPresence(svc, room, o, { type: "unavailable", codes, from: stanza });
  if (room.occupants.size === 0 && (!room.config.persistent || room.locked)) {
    svc.destroy(room).catch((error) =>
      svc.module.log.error("destroying room {room} failed: {error}", { room: room.jid, error })
    );
  }
}

function changeNick(
  svc: Service,
  room: Room,
  o: Occupant,
  from: string,
  nick: string,
  origin: Origin,
  stanza: Stanza,
) {
  if (o.sessions.size > 1) {
    refuse(origin, stanza, ["modify", "not-acceptable", "Leave from your other clients first"]);
    return;
  }
  const holder = room.occupants.get(nick);
  const registered = Object.entries(room.affiliations)
    .some(([jid, e]) => e.nick === nick && jid !== o.bareJid);
  if (holder || registered) {
    refuse(origin, stanza, ["cancel", "conflict", "That nickname is already in use"]);
    return;
  }
  // The old nickname goes (303 with the new one), the new one comes.
  broadcastPresence(svc, room, o, { type: "unavailable", codes: ["303"], newNick: nick });
  forget(room, o);
  o.nick = nick;
  o.jid = `${room.jid}/${nick}`;
  o.sessions.set(from, stanza);
  room.occupants.set(nick, o);
  room.byRealJid.set(from, nick);
  broadcastPresence(svc, room, o);
}
