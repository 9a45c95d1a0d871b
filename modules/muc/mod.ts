/**
 * Multi-user chat (XEP-0045) as a component, as Prosody's mod_muc:
 * `components: { "conference.example.com": { module: "muc" } }`.
 *
 * Rooms are made by joining them (locked until the creator configures
 * them, or accepts the defaults with an empty form: an instant room);
 * persistent rooms keep their configuration, affiliations and subject in
 * storage (map store `muc_rooms`) and come back after a restart. The room
 * archive (`muc_mam`, loaded with this module unless disabled) keeps the
 * messages, gives them the room's stanza-ids and serves the history on
 * join; without it, each room keeps its last messages in memory.
 *
 * The parts: `occupants.ts` (join, leave, nickname, presence),
 * `messages.ts` (groupchat, subject, private messages, invitations),
 * `admin.ts` (roles, affiliations, configuration, destruction,
 * registration), `config.ts` (the forms), `core/fanout.ts` (serialise once,
 * send to many), `room.ts` (the data and its rules).
 *
 * Options, as Prosody names them: `restrict_room_creation` (false: anyone;
 * "local": users of this server's hosts; true or "admin": the server's
 * admins), `muc_room_default_public` (true), `muc_room_default_persistent`
 * (false), `muc_room_default_members_only` (false),
 * `muc_room_default_moderated` (false), `muc_room_default_public_jids`
 * (false: only moderators see real JIDs), `muc_room_default_change_subject`
 * (false), `muc_room_default_history_length` (20),
 * `muc_room_default_language`, `muc_room_default_allow_member_invites`
 * (false), `max_history_messages` (20, the most a room may send),
 * `muc_room_locking` (true), `muc_room_lock_timeout` (300 s),
 * `muc_log_by_default` (true); and Cadence's limits `muc_max_rooms`
 * (10,000), `muc_max_rooms_per_owner` (100 rooms created and still owned
 * by one account, the server's admins excepted) and `muc_max_occupants`
 * (5,000 per room).
 * @module
 */
import { createHmac } from "node:crypto";
import type { Module } from "../../core/moduleapi.ts";
import type { StanzaEvent } from "../../core/router.ts";
import { bare } from "../../core/jid.ts";
import { element, type Stanza } from "../../core/xml/stanza.ts";
import type { KeyValStore, MapStore } from "../../core/storage/types.ts";
import { unrefTimeout } from "../../core/timers.ts";
import { formatDateTime } from "../../core/datetime.ts";
import { deliver, prepare } from "../../core/fanout.ts";
import { roomFeatures, roomInfoForm } from "./config.ts";
import { onAdminGet, onAdminSet, onOwner, onRegister } from "./admin.ts";
import { onPrivateMessage, onRoomMessage } from "./messages.ts";
import { broadcastPresence, onOccupantPresence, removeOccupant } from "./occupants.ts";
import {
  newRoom,
  type Occupant,
  occupantByReal,
  type Room,
  type RoomConfig,
  stored,
  type StoredRoom,
} from "./room.ts";
import {
  ADMIN_NS,
  DELAY_NS,
  type HistoryRequest,
  MUC_NS,
  OCCUPANT_ID_NS,
  OWNER_NS,
  type Removal,
  type Service,
} from "./service.ts";

const DISCO_INFO = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
const REGISTER_NS = "jabber:iq:register";
const PING_NS = "urn:xmpp:ping";
/** How long an iq forwarded to an occupant's client may take. */
const FORWARD_TIMEOUT_MS = 30_000;
/** Most iqs one real full JID may have waiting for an occupant's answer. */
const MAX_FORWARDED = 16;

/** The events a room archive (muc_mam) answers. */
export interface MucArchiveEvents {
  /** Archive a groupchat message: resolves its id, or undefined when this room is not archived. */
  "muc-archive-message": { room: Room; stanza: Stanza };
  /** History for a joining occupant, oldest first; undefined when not archived. */
  "muc-get-history": { room: Room; request: HistoryRequest };
  "muc-room-destroyed": { room: Room };
}

export default async function muc(module: Module) {
  const host = module.host;
  const opt = (name: string, fallback: boolean) =>
    module.getOptionBoolean("muc_room_default_" + name, fallback)!;
  const maxHistory = module.getOptionInteger("max_history_messages", 20, { min: 0, max: 1000 });
  const defaultHistory = module.getOptionInteger("muc_room_default_history_length", 20, {
    min: 0,
  });
  const language = module.getOptionString("muc_room_default_language", "")!;
  const logByDefault = module.getOptionBoolean("muc_log_by_default", true)!;
  const defaults = (): RoomConfig => ({
    name: "",
    description: "",
    language,
    persistent: opt("persistent", false),
    public: opt("public", true),
    membersOnly: opt("members_only", false),
    moderated: opt("moderated", false),
    password: "",
    whois: opt("public_jids", false) ? "anyone" : "moderators",
    changeSubject: opt("change_subject", false),
    allowInvites: opt("allow_member_invites", false),
    allowPm: "anyone",
    historyLength: Math.min(defaultHistory, maxHistory),
    maxUsers: 0,
    archiving: logByDefault,
  });
  const locking = module.getOptionBoolean("muc_room_locking", true)!;
  const lockTimeout = module.getOptionPeriod("muc_room_lock_timeout", 300);
  const maxRooms = module.getOptionInteger("muc_max_rooms", 10_000, { min: 1 });
  // One account cannot take the whole service's rooms (not a Prosody option).
  const maxPerOwner = module.getOptionInteger("muc_max_rooms_per_owner", 100, { min: 1 });
  const maxOccupants = module.getOptionInteger("muc_max_occupants", 5_000, { min: 1 });
  const restrict = module.getOption<unknown>("restrict_room_creation", false);
  if (![true, false, "admin", "local"].includes(restrict as string)) {
    throw new Error(
      `option restrict_room_creation: expected false, true, "admin" or "local", got ${
        JSON.stringify(restrict)
      }`,
    );
  }
  const admins = module.getOptionInheritedSet("admins");

  const store = module.openStore<StoredRoom>("muc_rooms", "map");
  const secretStore = module.openStore<string>("muc_secret") as KeyValStore<string>;
  let secret = await secretStore.get(null);
  if (!secret) {
    secret = crypto.randomUUID();
    await secretStore.set(null, secret);
  }

  const rooms = new Map<string, Room>();
  for (const [name, s] of await (store as MapStore<StoredRoom>).getAll("room")) {
    const room = newRoom(name, `${name}@${host}`, { ...defaults(), ...s.config });
    room.affiliations = s.affiliations ?? {};
    room.subject = s.subject;
    room.locked = s.locked;
    rooms.set(name, room);
  }

  // The room archive, unless the component disables it.
  const disabled = module.getOption<string[]>("modules_disabled", []);
  if (!disabled.includes("muc_mam")) await module.depends("muc_mam");

  /** Runs a room operation nobody waits for: a failure is logged, never left unhandled. */
  const background = (what: string, room: Room, p: Promise<unknown>) => {
    p.catch((error) =>
      module.log.error(`${what} {room} failed: {error}`, { room: room.jid, error })
    );
  };

  const svc: Service = {
    module,
    host,
    rooms,
    maxHistory,
    maxOccupants,
    defaults,
    async save(room) {
      if (room.config.persistent && !room.locked) await store.set(room.name, "room", stored(room));
      else await store.set(room.name, "room", null);
    },
    occupantId(room, bareJid) {
      return createHmac("sha256", secret!).update(room.jid + "\0" + bareJid).digest("base64url")
        .slice(0, 22);
    },
    broadcastPresence(room, o, selfCodes, codes) {
      broadcastPresence(svc, room, o, { selfCodes, codes });
    },
    remove(room, o, why) {
      removeOccupant(svc, room, o, why);
      // Kicked, banned or bounced out: an empty temporary room goes, as when one leaves.
      if (room.occupants.size === 0 && (!room.config.persistent || room.locked)) {
        background("destroying room", room, svc.destroy(room));
      }
    },
    async destroy(room, why?: Removal) {
      if (rooms.get(room.name) !== room) return;
      rooms.delete(room.name);
      if (room.lockTimer !== undefined) clearTimeout(room.lockTimer);
      for (const o of [...room.occupants.values()]) {
        removeOccupant(svc, room, o, why ?? { codes: [] });
      }
      await store.set(room.name, "room", null);
      await module.fireEvent("muc-room-destroyed", { room });
    },
    broadcastMessage(room, stanza) {
      const p = prepare(stanza);
      for (const o of room.occupants.values()) {
        for (const jid of o.sessions.keys()) deliver(module, p, jid);
      }
    },
  };

  // --- creation, history, archive ---------------------------------------------------

  const joinHooks = {
    mayCreate(from: string) {
      const who = bare(from);
      if (restrict === false) return true;
      if (restrict === "local") {
        return module.hostType(who.slice(who.indexOf("@") + 1)) === "local" || admins.has(who);
      }
      return admins.has(who);
    },
    create(name: string, creator: string) {
      if (rooms.size >= maxRooms) return undefined;
      if (!admins.has(creator)) {
        let owned = 0;
        for (const r of rooms.values()) {
          if (r.affiliations[creator]?.affiliation === "owner" && ++owned >= maxPerOwner) {
            return undefined;
          }
        }
      }
      const room = newRoom(name, `${name}@${host}`, defaults());
      room.affiliations[creator] = { affiliation: "owner" };
      if (locking) {
        room.locked = true;
        // A room its creator never configures goes away.
        room.lockTimer = unrefTimeout(() => {
          room.lockTimer = undefined;
          if (room.locked) background("destroying room", room, svc.destroy(room));
        }, lockTimeout * 1000);
      }
      rooms.set(name, room);
      if (!locking) background("saving room", room, svc.save(room));
      return room;
    },
    async history(room: Room, request: HistoryRequest): Promise<Stanza[]> {
      if (request.maxstanzas === 0) return [];
      const archived = await module.fireEvent("muc-get-history", { room, request });
      if (archived !== undefined) return archived as Stanza[];
      return room.history
        .filter((h) => request.since === undefined || h.when >= request.since)
        .slice(-request.maxstanzas)
        .map((h) => withDelay(h.stanza, h.when, room.jid));
    },
  };

  const messageHooks = {
    async archive(room: Room, stanza: Stanza): Promise<string | undefined> {
      if (!stanza.getChild("body")) return undefined;
      const id = await module.fireEvent("muc-archive-message", { room, stanza });
      if (id !== undefined) return id as string;
      // Not archived: the room remembers its last messages for history.
      room.history.push({ stanza, when: Date.now() / 1000 });
      const keep = Math.min(room.config.historyLength, maxHistory);
      if (room.history.length > keep) room.history.splice(0, room.history.length - keep);
      return undefined;
    },
  };

  // --- dispatch --------------------------------------------------------------------

  const roomOf = (stanza: Stanza) => {
    const to = stanza.attrs.to!;
    return rooms.get(to.slice(0, to.indexOf("@")));
  };
  const nickOf = (stanza: Stanza) => {
    const to = stanza.attrs.to!;
    return to.slice(to.indexOf("/") + 1);
  };
  const noRoom = (event: StanzaEvent) => {
    const type = event.stanza.attrs.type;
    if (type !== "error" && type !== "result") {
      event.origin.send(event.stanza.errorReply("cancel", "item-not-found", "No such room"));
    }
    return true;
  };

  module.hook("presence/full", (event: StanzaEvent) => onOccupantPresence(svc, joinHooks, event));
  module.hook("presence/bare", () => true); // (presence to a room's bare JID means nothing)

  module.hook("message/bare", (event: StanzaEvent) => {
    const room = roomOf(event.stanza);
    if (!room || room.locked) return noRoom(event);
    return onRoomMessage(svc, messageHooks, room, event);
  });
  module.hook("message/full", (event: StanzaEvent) => {
    const room = roomOf(event.stanza);
    if (!room) return noRoom(event);
    return onPrivateMessage(svc, room, nickOf(event.stanza), event);
  });

  module.hook("iq/bare", (event: StanzaEvent) => {
    const { origin, stanza } = event;
    const type = stanza.attrs.type;
    if (type !== "get" && type !== "set") return true;
    const room = roomOf(stanza);
    const child = stanza.firstChild()!;
    const ns = child.attrs.xmlns;
    const from = stanza.attrs.from ?? origin.full_jid ?? "";
    if (!room || (room.locked && room.affiliations[bare(from)]?.affiliation !== "owner")) {
      return noRoom(event);
    }
    if (ns === DISCO_INFO && type === "get") return roomInfo(room, event, child.attrs.node);
    if (ns === DISCO_ITEMS && type === "get") {
      origin.send(stanza.reply().tag("query", { xmlns: DISCO_ITEMS }).up());
      return true;
    }
    if (ns === ADMIN_NS) {
      return type === "get" ? onAdminGet(room, event) : onAdminSet(svc, room, event);
    }
    if (ns === OWNER_NS) return onOwner(svc, room, event);
    if (ns === REGISTER_NS) return onRegister(svc, room, event);
    if (ns === PING_NS) {
      origin.send(stanza.reply());
      return true;
    }
    const r = module.fireEvent(`muc-iq/${ns}:${child.name}`, { room, event });
    if (r !== undefined) return r;
    origin.send(stanza.errorReply("cancel", "service-unavailable"));
    return true;
  });

  /** By real full JID: iqs forwarded to occupants and not yet answered. */
  const forwarding = new Map<string, number>();
  module.hook("iq/full", (event: StanzaEvent) => {
    const { origin, stanza } = event;
    const type = stanza.attrs.type;
    if (type !== "get" && type !== "set") return true; // replies to forwarded iqs are caught first
    const room = roomOf(stanza);
    if (!room) return noRoom(event);
    const from = stanza.attrs.from ?? origin.full_jid ?? "";
    const me = occupantByReal(room, from);
    const target = room.occupants.get(nickOf(stanza));
    const child = stanza.firstChild()!;
    if (child.attrs.xmlns === PING_NS && me && me === target) {
      // Self-ping (XEP-0410): still in the room under this nickname.
      origin.send(stanza.reply());
      return true;
    }
    if (!me) {
      origin.send(
        stanza.errorReply(
          "cancel",
          "not-acceptable",
          "You are not currently connected to this chat",
        ),
      );
      return true;
    }
    if (!target) {
      origin.send(stanza.errorReply("cancel", "item-not-found", "No such occupant"));
      return true;
    }
    // The answer comes when it comes: the sender's stream goes on meanwhile (it may be
    // the one to answer, or its target may be waiting on it), within a bound.
    const inFlight = forwarding.get(from) ?? 0;
    if (inFlight >= MAX_FORWARDED) {
      origin.send(stanza.errorReply("wait", "resource-constraint", "Too many iqs in flight"));
      return true;
    }
    forwarding.set(from, inFlight + 1);
    forwardIq(me, target, event)
      .catch((error) => module.log.error("forwarding an iq failed: {error}", { error }))
      .finally(() => {
        const n = (forwarding.get(from) ?? 1) - 1;
        if (n > 0) forwarding.set(from, n);
        else forwarding.delete(from);
      });
    return true;
  });

  /** An iq between occupants goes to a client of the target, from the sender's occupant JID. */
  async function forwardIq(me: Occupant, target: Occupant, event: StanzaEvent) {
    const { origin, stanza } = event;
    const to = [...target.sessions.keys()].at(-1)!;
    const out = element("iq", { type: stanza.attrs.type, from: me.jid, to });
    out.children = stanza.children;
    try {
      const { stanza: reply } = await module.sendIq(out, { timeoutMs: FORWARD_TIMEOUT_MS });
      const back = element("iq", {
        type: "result",
        id: stanza.attrs.id,
        from: target.jid,
        to: stanza.attrs.from,
      });
      back.children = reply.children;
      origin.send(back);
    } catch (e) {
      const err = e as { type?: string; condition?: string; text?: string };
      origin.send(
        stanza.errorReply(
          (err.type ?? "cancel") as "cancel",
          err.condition ?? "service-unavailable",
          err.text,
        ),
      );
    }
    return true;
  }

  function roomInfo(room: Room, { origin, stanza }: StanzaEvent, node?: string) {
    const from = stanza.attrs.from ?? origin.full_jid ?? "";
    if (node === "x-roomuser-item") {
      // The nickname one has registered (XEP-0045 §7.12).
      const q = stanza.reply().tag("query", { xmlns: DISCO_INFO, node });
      const nick = room.affiliations[bare(from)]?.nick;
      if (nick) q.tag("identity", { category: "conference", type: "text", name: nick }).up();
      origin.send(q.up());
      return true;
    }
    if (node !== undefined) {
      origin.send(stanza.errorReply("cancel", "item-not-found"));
      return true;
    }
    const q = stanza.reply().tag("query", { xmlns: DISCO_INFO });
    q.tag("identity", { category: "conference", type: "text", name: room.config.name || room.name })
      .up();
    const features = [
      MUC_NS,
      DISCO_INFO,
      DISCO_ITEMS,
      REGISTER_NS,
      OCCUPANT_ID_NS,
      "http://jabber.org/protocol/muc#stable_id",
      "http://jabber.org/protocol/muc#self-ping-optimization",
      ...roomFeatures(room),
    ];
    const extra: string[] = [];
    module.fireEvent("muc-disco-info", { room, features: extra });
    for (const f of [...features, ...extra]) q.tag("feature", { var: f }).up();
    q.addChild(roomInfoForm(room));
    origin.send(q.up());
    return true;
  }

  module.hook("iq/host", (event: StanzaEvent) => {
    const { origin, stanza } = event;
    const type = stanza.attrs.type;
    if (type !== "get" && type !== "set") return true;
    const child = stanza.firstChild()!;
    const ns = child.attrs.xmlns;
    if (ns === DISCO_INFO && type === "get" && child.attrs.node === undefined) {
      const q = stanza.reply().tag("query", { xmlns: DISCO_INFO });
      q.tag("identity", { category: "conference", type: "text", name: "Chatrooms" }).up();
      for (const f of [MUC_NS, DISCO_INFO, DISCO_ITEMS, OCCUPANT_ID_NS, PING_NS]) {
        q.tag("feature", { var: f }).up();
      }
      origin.send(q.up());
      return true;
    }
    if (ns === DISCO_ITEMS && type === "get" && child.attrs.node === undefined) {
      // Public rooms (XEP-0045 §6.3), by name.
      const q = stanza.reply().tag("query", { xmlns: DISCO_ITEMS });
      for (const room of rooms.values()) {
        if (!room.config.public || room.locked) continue;
        q.tag("item", { jid: room.jid, name: room.config.name || room.name }).up();
      }
      origin.send(q.up());
      return true;
    }
    if (ns === PING_NS && type === "get") {
      origin.send(stanza.reply());
      return true;
    }
    origin.send(stanza.errorReply("cancel", "service-unavailable"));
    return true;
  });

  // Occupants are told when the server (or this module) goes away (332).
  function shutdown() {
    for (const room of rooms.values()) {
      for (const o of [...room.occupants.values()]) {
        removeOccupant(svc, room, o, { codes: ["332"] });
      }
    }
  }
  module.hookGlobal("server-stopping", shutdown);
  module.exports.rooms = rooms;
}

/** A stored message as history: with a delay stamp from the room. */
function withDelay(stanza: Stanza, when: number, roomJid: string): Stanza {
  const copy = stanza.clone();
  copy.tag("delay", { xmlns: DELAY_NS, from: roomJid, stamp: formatDateTime(when) })
    .up();
  return copy;
}
