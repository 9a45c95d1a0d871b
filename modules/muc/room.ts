/**
 * A chat room of the MUC service (XEP-0045): what it is (configuration,
 * affiliations, subject — stored for persistent rooms) and who is in it
 * (occupants, in memory only), with the rules of who may do what.
 *
 * @example
 * ```ts
 * const room = newRoom("club", "club@conference.localhost", defaultConfig());
 * roleFor(room, "member"); // "participant"
 * ```
 * @module
 */
import type { Stanza } from "../../core/xml/stanza.ts";

export type Affiliation = "owner" | "admin" | "member" | "outcast" | "none";
export type Role = "moderator" | "participant" | "visitor" | "none";

/** Rank of affiliations and roles, to compare who may act on whom. */
export const AFFILIATION_RANK: Record<Affiliation, number> = {
  outcast: 0,
  none: 1,
  member: 2,
  admin: 3,
  owner: 4,
};
export const ROLE_RANK: Record<Role, number> = {
  none: 0,
  visitor: 1,
  participant: 2,
  moderator: 3,
};

/** Most affiliations a room keeps (admin changes, invitations, registrations). */
export const MAX_AFFILIATIONS = 10_000;

/** A room's configuration (the `muc#roomconfig` form, XEP-0045 §10.2). */
export interface RoomConfig {
  name: string;
  description: string;
  language: string;
  persistent: boolean;
  /** Listed in the service's disco#items (not hidden). */
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  /** Empty: no password. */
  password: string;
  /** Who sees occupants' real JIDs. */
  whois: "moderators" | "anyone";
  /** Occupants (not only moderators) may change the subject. */
  changeSubject: boolean;
  /** Occupants (not only admins) may invite to a members-only room. */
  allowInvites: boolean;
  /** Who may send private messages. */
  allowPm: "anyone" | "participants" | "moderators" | "none";
  /** Most messages sent as history on join. */
  historyLength: number;
  /** Most occupants; 0 for the service's limit. */
  maxUsers: number;
  /** Messages go to the room's archive (muc_mam). */
  archiving: boolean;
}

/** An affiliation and what goes with it. */
export interface AffiliationEntry {
  affiliation: Exclude<Affiliation, "none">;
  /** A registered (reserved) nickname. */
  nick?: string;
  reason?: string;
}

/** What a persistent room keeps across restarts. */
export interface StoredRoom {
  config: RoomConfig;
  /** By bare JID. */
  affiliations: Record<string, AffiliationEntry>;
  subject?: Subject;
  /** Still waiting for its owner's first configuration. */
  locked?: boolean;
}

export interface Subject {
  text: string;
  /** The occupant JID of who set it (room@service/nick), or the room. */
  from: string;
  when: number;
}

/** One occupant: a nickname, the real JID behind it, and its sessions. */
export interface Occupant {
  nick: string;
  /** room@service/nick */
  jid: string;
  /** The occupant's real bare JID. */
  bareJid: string;
  role: Role;
  /** Each real full JID joined under this nick, with its last presence. */
  sessions: Map<string, Stanza>;
  /** XEP-0421: stable per room and real bare JID. */
  occupantId: string;
}

/** A room in memory. */
export interface Room extends StoredRoom {
  /** The localpart. */
  name: string;
  /** room@service */
  jid: string;
  /** By nickname. */
  occupants: Map<string, Occupant>;
  /** By real full JID: the nickname. */
  byRealJid: Map<string, string>;
  /** Recent messages, for history when the room is not archived. */
  history: { stanza: Stanza; when: number }[];
  /** The room's timer that destroys it if its creator never configures it. */
  lockTimer?: number;
}

/** A new room with no one in it and no affiliation. */
export function newRoom(name: string, jid: string, config: RoomConfig): Room {
  return {
    name,
    jid,
    config,
    affiliations: {},
    occupants: new Map(),
    byRealJid: new Map(),
    history: [],
  };
}

/** The affiliation of a real (bare) JID. */
export function affiliationOf(room: Room, bareJid: string): Affiliation {
  const own = room.affiliations[bareJid];
  if (own) return own.affiliation;
  // An affiliation given to a whole domain (a ban, usually), as Prosody does.
  const at = bareJid.indexOf("@");
  return at === -1 ? "none" : room.affiliations[bareJid.slice(at + 1)]?.affiliation ?? "none";
}

/** Whether an affiliation set on `jid` (a bare JID or a domain) applies to `bareJid`. */
export function affiliationCovers(jid: string, bareJid: string): boolean {
  return bareJid === jid || (!jid.includes("@") && bareJid.endsWith("@" + jid));
}

/** The role a new occupant gets from its affiliation (XEP-0045 §5.1). */
export function roleFor(room: Room, affiliation: Affiliation): Role {
  if (affiliation === "owner" || affiliation === "admin") return "moderator";
  if (affiliation === "outcast") return "none";
  if (affiliation === "member") return "participant";
  return room.config.moderated ? "visitor" : "participant";
}

/** Whether `viewer` sees the real JIDs of occupants. */
export function seesRealJids(room: Room, viewer: Occupant | undefined): boolean {
  return room.config.whois === "anyone" || viewer?.role === "moderator";
}

/** The owners' bare JIDs. */
export function owners(room: Room): string[] {
  return Object.keys(room.affiliations).filter((j) => room.affiliations[j].affiliation === "owner");
}

/** The occupant a real full JID is in the room as. */
export function occupantByReal(room: Room, fullJid: string): Occupant | undefined {
  const nick = room.byRealJid.get(fullJid);
  return nick === undefined ? undefined : room.occupants.get(nick);
}

/** What a persistent room stores. */
export function stored(room: Room): StoredRoom {
  const s: StoredRoom = { config: room.config, affiliations: room.affiliations };
  if (room.subject) s.subject = room.subject;
  if (room.locked) s.locked = true;
  return s;
}
