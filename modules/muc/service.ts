/**
 * What the parts of the MUC component share: the component's module, its
 * rooms, its limits, and the few operations every part needs (save a room,
 * send to occupants, remove one). `mod.ts` builds it; `occupants.ts`,
 * `messages.ts` and `admin.ts` take it.
 * @module
 */
import type { Module } from "../../core/moduleapi.ts";
import type { Stanza } from "../../core/xml/stanza.ts";
import type { Occupant, Room, RoomConfig } from "./room.ts";

export const MUC_NS = "http://jabber.org/protocol/muc";
export const USER_NS = "http://jabber.org/protocol/muc#user";
export const ADMIN_NS = "http://jabber.org/protocol/muc#admin";
export const OWNER_NS = "http://jabber.org/protocol/muc#owner";
export const OCCUPANT_ID_NS = "urn:xmpp:occupant-id:0";
export const SID_NS = "urn:xmpp:sid:0";
export const DELAY_NS = "urn:xmpp:delay";

/** What history a joining occupant asked for (XEP-0045 §7.2.14). */
export interface HistoryRequest {
  maxstanzas: number;
  /** Not older than this (seconds since the epoch). */
  since?: number;
}

/** A removal: the status codes, and who did it and why. */
export interface Removal {
  codes: string[];
  actor?: string;
  reason?: string;
  /** For room destruction: where to go, and why. */
  destroy?: Stanza;
}

export interface Service {
  module: Module;
  host: string;
  rooms: Map<string, Room>;
  /** Limits. */
  maxHistory: number;
  maxOccupants: number;
  defaults(): RoomConfig;
  /** Writes a persistent room to storage (or removes a room that is no longer persistent). */
  save(room: Room): Promise<void>;
  /** XEP-0421: the occupant id of a real bare JID in a room. */
  occupantId(room: Room, bareJid: string): string;
  /** Sends an occupant's presence to everyone in the room (codes for itself and for others). */
  broadcastPresence(room: Room, occupant: Occupant, selfCodes?: string[], codes?: string[]): void;
  /** Takes an occupant out (kicked, banned, room destroyed…), telling everyone. */
  remove(room: Room, occupant: Occupant, why: Removal): void;
  /** Destroys a room: occupants are told, storage forgets it. */
  destroy(room: Room, why?: Removal): Promise<void>;
  /** Sends a message (from the room or an occupant) to every occupant. */
  broadcastMessage(room: Room, stanza: Stanza): void;
}

/** The `<x xmlns='…muc#user'>` item of an occupant. */
export function userItem(
  affiliation: string,
  role: string,
  jid?: string,
  nick?: string,
): Record<string, string> {
  const attrs: Record<string, string> = { affiliation, role };
  if (jid !== undefined) attrs.jid = jid;
  if (nick !== undefined) attrs.nick = nick;
  return attrs;
}
