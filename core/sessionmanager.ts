/**
 * The session manager: who is online, under which full and bare JIDs.
 * Prosody's `core/sessionmanager.lua`: make_authenticated, bind_resource
 * (newer session wins; the older one gets a `conflict` stream error),
 * destroy_session, and the send_to_*_resources helpers.
 *
 * @example
 * ```ts
 * sessions.makeAuthenticated(session, "juliet");
 * await sessions.bindResource(session, "balcony"); // session.full_jid = "juliet@localhost/balcony"
 * sessions.sendToAvailableResources("juliet", "localhost", stanza);
 * ```
 * @module
 */
import type { Session } from "./session.ts";
import type { Stanza } from "./xml/stanza.ts";
import { prepNode, prepResource } from "./jid.ts";
import { type EventBus, isPromise } from "./events.ts";

/** What the session manager needs of the hosts: their event buses and options. */
export interface SessionHosts {
  /** The event bus of a host, if the server has it. */
  events(host: string): EventBus | undefined;
  /** An option for a host: the host's value, else the global one, else the default. */
  option(host: string, name: string): unknown;
}

/** All sessions of one account, as Prosody's `bare_sessions[jid]`. */
export interface UserSessions {
  username: string;
  host: string;
  sessions: Map<string, Session>;
  /** The user's roster, shared by the resources (roster module). */
  roster: unknown;
}

export class BindError extends Error {
  constructor(
    readonly type: "cancel" | "modify" | "wait",
    readonly condition: string,
    text?: string,
  ) {
    super(text ?? condition);
  }
}

export class SessionManager {
  readonly full = new Map<string, Session>();
  readonly bare = new Map<string, UserSessions>();

  /** Authenticated sessions of each account (bare JID) that have not bound a resource yet. */
  private unbound = new Map<string, number>();
  private counted = new WeakSet<Session>();

  constructor(private hosts: SessionHosts) {}

  /**
   * SASL succeeded: the session belongs to `username` now (c2s_unauthed →
   * c2s_unbound). Returns true, or why not: an invalid username, or too many
   * of the account's streams waiting to bind (`max_user_sessions` caps those
   * too, or unbound streams would slip past the cap on resources).
   */
  makeAuthenticated(session: Session, username: string): true | string {
    const node = prepNode(username);
    if (node === undefined) return "Invalid username";
    const bareJid = node + "@" + session.host;
    const waiting = this.unbound.get(bareJid) ?? 0;
    if (waiting >= this.maxSessions(session.host)) {
      return "Too many connections of this account are waiting to bind a resource";
    }
    session.username = node;
    if (session.type === "c2s_unauthed") session.type = "c2s_unbound";
    if (!this.counted.has(session)) {
      this.counted.add(session);
      this.unbound.set(bareJid, waiting + 1);
    }
    return true;
  }

  private maxSessions(host: string): number {
    return Number(this.hosts.option(host, "max_user_sessions") ?? 10);
  }

  /** The session is bound, or gone: it no longer waits to bind. */
  private settle(session: Session): void {
    if (!this.counted.delete(session)) return;
    const bareJid = session.username + "@" + session.host;
    const n = (this.unbound.get(bareJid) ?? 1) - 1;
    if (n > 0) this.unbound.set(bareJid, n);
    else this.unbound.delete(bareJid);
  }

  /**
   * Binds a resource (a random one when none is asked for). On conflict the
   * older session is closed with `conflict` (Prosody's default `kick_old`).
   */
  async bindResource(session: Session, wanted?: string): Promise<void> {
    const username = session.username;
    if (!username || session.resource) throw new BindError("cancel", "not-allowed");
    const events = this.hosts.events(session.host);
    if (!events) throw new BindError("cancel", "internal-server-error");
    const event = { session, resource: wanted || undefined, error: undefined as unknown };
    let veto = events.fire("pre-resource-bind", event);
    if (isPromise(veto)) veto = await veto;
    // Closed while a handler was deciding: it must never reach the tables.
    if (session.destroyed) throw new BindError("cancel", "not-allowed", "The session is closed");
    if (veto === false) {
      const e = event.error as { type?: string; condition?: string; text?: string } | undefined;
      throw new BindError(
        (e?.type as "cancel") ?? "cancel",
        e?.condition ?? "not-allowed",
        e?.text,
      );
    }
    let resource = event.resource === undefined ? randomResource() : prepResource(event.resource);
    if (resource === undefined) throw new BindError("modify", "bad-request", "Invalid resource");

    const bareJid = username + "@" + session.host;
    let user = this.bare.get(bareJid);
    const old = user?.sessions.get(resource);
    const limit = this.maxSessions(session.host);
    if (user && !old && user.sessions.size >= limit) {
      throw new BindError(
        "wait",
        "resource-constraint",
        `Resource limit reached; only ${limit} resources allowed`,
      );
    }
    if (old && old !== session) {
      if (this.hosts.option(session.host, "conflict_resolve") === "kick_new") {
        throw new BindError("cancel", "conflict", "Resource already in use");
      }
      old.close({ condition: "conflict", text: "Replaced by new connection" });
      user = this.bare.get(bareJid);
    }
    if (!user) {
      user = { username, host: session.host, sessions: new Map(), roster: undefined };
      this.bare.set(bareJid, user);
    }
    // Racing binds of the same resource: pick a fresh one rather than clobber.
    if (user.sessions.has(resource)) resource = randomResource();
    session.resource = resource;
    session.full_jid = bareJid + "/" + resource;
    session.type = "c2s";
    user.sessions.set(resource, session);
    this.full.set(session.full_jid, session);
    this.settle(session);
    session.onBound();
    const r = events.fire("resource-bind", { session });
    if (isPromise(r)) await r;
  }

  /** Removes a session from the tables and fires the unbind events. */
  async destroySession(session: Session, error?: string): Promise<void> {
    this.settle(session);
    const fullJid = session.full_jid;
    if (!fullJid || this.full.get(fullJid) !== session) return;
    const events = this.hosts.events(session.host);
    let r = events?.fire("pre-resource-unbind", { session, error });
    if (isPromise(r)) r = await r;
    this.full.delete(fullJid);
    const bareJid = session.username + "@" + session.host;
    const user = this.bare.get(bareJid);
    if (user && user.sessions.get(session.resource!) === session) {
      user.sessions.delete(session.resource!);
      if (user.sessions.size === 0) this.bare.delete(bareJid);
    }
    r = events?.fire("resource-unbind", { session, error });
    if (isPromise(r)) await r;
  }

  /** The sessions of a bare JID, if any are online. */
  user(username: string, host: string): UserSessions | undefined {
    return this.bare.get(username + "@" + host);
  }

  /**
   * The connected (bound) resources of a user; empty when none. A session
   * that has ended but is not unbound yet (its unbind events are running)
   * is left out here and below: nothing is delivered to it any more.
   */
  *resources(username: string, host: string): Iterable<Session> {
    const sessions = this.bare.get(username + "@" + host)?.sessions;
    if (!sessions) return;
    for (const s of sessions.values()) if (!s.destroyed) yield s;
  }

  /** The bound session with this full JID, unless it has ended. */
  fullSession(jid: string): Session | undefined {
    const s = this.full.get(jid);
    return s === undefined || s.destroyed ? undefined : s;
  }

  /** The resources with available presence. */
  available(username: string, host: string): Session[] {
    const out: Session[] = [];
    const sessions = this.bare.get(username + "@" + host)?.sessions;
    if (!sessions) return out;
    for (const s of sessions.values()) if (s.presence && !s.destroyed) out.push(s);
    return out;
  }

  /**
   * The available resources a message to the bare JID goes to (RFC 6121
   * §8.5.2.1.1): those with the highest non-negative priority — all of them
   * when they tie, as Prosody does.
   */
  top(username: string, host: string): Session[] {
    let best = -1;
    const out: Session[] = [];
    const sessions = this.bare.get(username + "@" + host)?.sessions;
    if (!sessions) return out;
    for (const s of sessions.values()) {
      if (!s.presence || s.destroyed || s.priority < 0 || s.priority < best) continue;
      if (s.priority > best) {
        best = s.priority;
        out.length = 0;
      }
      out.push(s);
    }
    return out;
  }

  /** Sends to every resource with available presence, serialised once; returns how many. */
  sendToAvailableResources(username: string, host: string, stanza: Stanza): number {
    let count = 0;
    let xml: string | undefined;
    for (const s of this.resources(username, host)) {
      if (!s.presence) continue;
      s.send(stanza, xml ??= stanza.toString());
      count++;
    }
    return count;
  }

  /**
   * Sends to every resource that asked for the roster (roster pushes), each
   * copy addressed to that resource's full JID; returns how many.
   */
  sendToInterestedResources(username: string, host: string, stanza: Stanza): number {
    let count = 0;
    for (const s of this.resources(username, host)) {
      if (!s.interested) continue;
      stanza.attrs.to = s.full_jid;
      s.send(stanza);
      count++;
    }
    return count;
  }
}

function randomResource(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return "cadence-" + s;
}
