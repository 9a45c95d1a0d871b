/**
 * Rosters (RFC 6121 §2): loading and saving a user's contact list, roster
 * pushes, and the subscription queries other modules ask. Prosody's
 * `core/rostermanager.lua`.
 *
 * A roster is kept in memory while its user has a session and is stored in
 * the keyval store `roster` (items, pending inbound requests, version).
 * Every change goes through {@link RosterManager.modify}, which serialises
 * read-modify-write per user so concurrent changes never lose an item.
 *
 * @example
 * ```ts
 * await rosters.modify("juliet", "localhost", (roster) => {
 *   roster.items.set("romeo@localhost", { subscription: "none", groups: [] });
 *   return ["romeo@localhost"]; // changed items: saved, version bumped, pushed
 * });
 * await rosters.isContactSubscribed("juliet", "localhost", "romeo@localhost");
 * ```
 * @module
 */
import type { EventBus } from "./events.ts";
import { KeyedLock } from "./keyedlock.ts";
import type { SessionManager } from "./sessionmanager.ts";
import type { KeyValStore } from "./storage/types.ts";
import type { Subscription, SubscriptionState } from "./subscription.ts";
import { element, iq, type Stanza } from "./xml/stanza.ts";

export interface RosterItem {
  subscription: Subscription;
  name?: string;
  groups: string[];
  /** "Pending Out": the user asked for the contact's presence. */
  ask?: "subscribe";
  /** The user pre-approved a subscription request from the contact (RFC 6121 §3.4). */
  approved?: boolean;
}

export interface Roster {
  items: Map<string, RosterItem>;
  /** "Pending In": subscription requests from contacts, as received (XML). */
  pending: Map<string, string>;
  /** Bumped on every change (XEP-0237 roster versioning). */
  version: number;
}

/** A roster as stored (keyval store `roster`). */
export interface StoredRoster {
  items: Record<string, RosterItem>;
  pending: Record<string, string>;
  version: number;
}

/** What the roster manager needs: the `roster` store of a host, sessions, and host events. */
export interface RosterDeps {
  store(host: string): KeyValStore<StoredRoster>;
  sessions: SessionManager;
  events(host: string): EventBus | undefined;
}

export const ROSTER_NS = "jabber:iq:roster";

let pushCounter = 0;

export class RosterManager {
  private locks = new KeyedLock();

  constructor(private deps: RosterDeps) {}

  private store(host: string) {
    return this.deps.store(host);
  }

  /**
   * The user's roster: the online copy if the user has a session, else read
   * from storage under the user's lock, so that it never sees storage while a
   * {@link modify} is between its read and its write.
   */
  load(username: string, host: string): Promise<Roster> {
    const online = this.deps.sessions.user(username, host);
    if (online?.roster) return Promise.resolve(online.roster as Roster);
    return this.locks.run(`${username}@${host}`, () => this.loadLocked(username, host));
  }

  /** {@link load} for a caller that holds the user's lock. */
  private async loadLocked(username: string, host: string): Promise<Roster> {
    const online = this.deps.sessions.user(username, host);
    if (online?.roster) return online.roster as Roster;
    const stored = await this.store(host).get(username);
    const roster: Roster = {
      items: new Map(Object.entries(stored?.items ?? {})),
      pending: new Map(Object.entries(stored?.pending ?? {})),
      version: stored?.version ?? 0,
    };
    const r = this.deps.events(host)?.fire("roster-load", { username, host, roster });
    if (r instanceof Promise) await r;
    // A session bound meanwhile shares this copy from now on.
    const now = this.deps.sessions.user(username, host);
    if (now) now.roster ??= roster;
    return (now?.roster as Roster | undefined) ?? roster;
  }

  /**
   * Changes a roster under the user's lock: `fn` returns the contacts whose
   * items changed (pushed to interested resources) — or `true` when only
   * pending requests changed — and the roster is saved with a new version.
   * `saved` runs once the change is stored and before the pushes: a roster
   * set is answered there, as clients wait for that result (RFC 6121 §2.3.2).
   */
  modify<T extends string[] | boolean>(
    username: string,
    host: string,
    fn: (roster: Roster) => T | Promise<T>,
    saved?: (changed: T) => void,
  ): Promise<T> {
    return this.locks.run(`${username}@${host}`, async () => {
      const roster = await this.loadLocked(username, host);
      const changed = await fn(roster);
      if (changed === false || (Array.isArray(changed) && changed.length === 0)) return changed;
      roster.version++;
      await this.store(host).set(username, {
        items: Object.fromEntries(roster.items),
        pending: Object.fromEntries(roster.pending),
        version: roster.version,
      });
      saved?.(changed);
      if (Array.isArray(changed)) {
        for (const jid of changed) this.push(username, host, jid, roster);
      }
      return changed;
    });
  }

  /** Sends a roster push for `jid` to the user's interested resources. */
  push(username: string, host: string, jid: string, roster: Roster): void {
    const item = roster.items.get(jid);
    const query = iq({ type: "set", id: "push" + (++pushCounter).toString(36) })
      .tag("query", { xmlns: ROSTER_NS, ver: String(roster.version) });
    query.addChild(
      item ? itemElement(jid, item) : element("item", { jid, subscription: "remove" }),
    );
    this.deps.sessions.sendToInterestedResources(username, host, query.reset());
  }

  /** The subscription state of a contact, for the state machine. */
  static stateOf(roster: Roster, jid: string): SubscriptionState {
    const item = roster.items.get(jid);
    return {
      subscription: item?.subscription ?? "none",
      pendingOut: item?.ask === "subscribe",
      pendingIn: roster.pending.has(jid),
      approved: item?.approved === true,
    };
  }

  /** Whether the contact receives the user's presence (`from` or `both`). */
  async isContactSubscribed(username: string, host: string, jid: string): Promise<boolean> {
    const s = (await this.load(username, host)).items.get(jid)?.subscription;
    return s === "from" || s === "both";
  }

  /** Whether the user receives the contact's presence (`to` or `both`). */
  async isUserSubscribed(username: string, host: string, jid: string): Promise<boolean> {
    const s = (await this.load(username, host)).items.get(jid)?.subscription;
    return s === "to" || s === "both";
  }
}

/** The `<item/>` of a roster result or push. */
export function itemElement(jid: string, item: RosterItem): Stanza {
  const attrs: Record<string, string> = { jid, subscription: item.subscription };
  if (item.name) attrs.name = item.name;
  if (item.ask) attrs.ask = item.ask;
  if (item.approved) attrs.approved = "true";
  const el = element("item", attrs);
  for (const g of item.groups) el.textTag("group", g);
  return el;
}
