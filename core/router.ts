/**
 * The stanza router: Prosody's `core/stanza_router.lua`.
 *
 * `process()` takes every element a session sends. From a bound client, a
 * `message`/`presence`/`iq` gets its `from` stamped with the session's full
 * JID and its `to` normalised, then goes to `post()`; everything else
 * (unauthenticated traffic, nonzas such as SASL or STARTTLS) fires
 * `stanza/<xmlns>:<name>` (`stanza/iq/<ns>:<child>` for iq get/set) on the
 * session's host.
 *
 * `post()` fires, on the sender's host, `pre-stanza` then
 * `pre-<kind>/<full|bare|host>` (local clients only), then on the
 * destination host `<kind>/<full|bare|host>`, then `<kind>/self` for stanzas
 * to one's own bare JID. A stanza nobody handles gets `service-unavailable`
 * (never for errors and results).
 *
 * @example
 * ```ts
 * router.post(hostOrigin, message({ from: "localhost", to: "juliet@localhost" }, "hi"), false);
 * ```
 * @module
 */
import { type EventBus, isPromise } from "./events.ts";
import { prep } from "./jid.ts";
import { type ErrorType, type Stanza, StanzaError } from "./xml/stanza.ts";
import type { Logger } from "./log.ts";
import type { StanzaCounter } from "./metrics.ts";

/** Where a stanza comes from: a client session or a host itself (module.send). */
export interface Origin {
  type: string;
  host: string;
  username?: string;
  full_jid?: string;
  send(stanza: Stanza | string): boolean;
  close?(reason?: string | { condition: string; text?: string }): void;
}

/** The payload of every stanza event. */
export interface StanzaEvent<O extends Origin = Origin> {
  origin: O;
  stanza: Stanza;
  /** Addressed to the sender's own bare JID (or had no `to`). */
  to_self?: boolean;
  /**
   * The localpart of the account the stanza is for (bare, full and self
   * destinations), parsed once by the router so handlers need not split
   * `to` again; undefined for stanzas to a host.
   */
  to_user?: string;
}

type Dest = "full" | "bare" | "host";

/** What the router needs of the hosts: which exist, and their event buses. */
export interface RouterHosts {
  has(host: string): boolean;
  events(host: string): EventBus | undefined;
}

const STAGE_PRE_STANZA = 0;
const STAGE_PRE_KIND = 1;
const STAGE_DELIVER = 2;
const STAGE_SELF = 3;
const STAGE_DONE = 4;

export class Router {
  /** Counts the stanzas sessions hand to {@link process} (metrics), if set. */
  received: StanzaCounter | undefined;

  constructor(private hosts: RouterHosts, private log: Logger) {}

  /** Handles one element received from a session. */
  process(origin: Origin, stanza: Stanza): unknown {
    try {
      const r = this.processUnsafe(origin, stanza);
      if (isPromise(r)) {
        return Promise.resolve(r).catch((e) => this.failed(origin, stanza, e));
      }
      return r;
    } catch (e) {
      this.failed(origin, stanza, e);
    }
  }

  private processUnsafe(origin: Origin, stanza: Stanza): unknown {
    const name = stanza.name;
    const attrs = stanza.attrs;
    const isStanza = attrs.xmlns === undefined &&
      (name === "message" || name === "presence" || name === "iq");
    if (isStanza) this.received?.count(name);
    if (isStanza && origin.type === "c2s") {
      const type = attrs.type;
      if (type === "error" && stanza.children.length === 0) return; // nothing to act on
      if (name === "iq" && !validIq(stanza)) {
        if (type !== "error" && type !== "result") {
          attrs.from = origin.full_jid;
          origin.send(stanza.errorReply("modify", "bad-request", "Invalid IQ"));
        }
        return;
      }
      attrs.from = origin.full_jid; // a client can never spoof another address
      const to = attrs.to;
      if (to !== undefined) {
        const prepped = prep(to);
        if (prepped === undefined) {
          if (type !== "error" && type !== "result") {
            origin.send(stanza.errorReply("modify", "jid-malformed"));
          }
          return;
        }
        attrs.to = prepped;
      }
      return this.post(origin, stanza, true);
    }
    let event: string;
    if (isStanza) {
      const child = stanza.firstChild();
      event = name === "iq" && (attrs.type === "get" || attrs.type === "set") && child
        ? "stanza/iq/" + child.attrs.xmlns + ":" + child.name
        : "stanza/" + name;
    } else {
      event = "stanza/" + attrs.xmlns + ":" + name;
    }
    const r = this.hosts.events(origin.host)?.fire(event, { origin, stanza });
    if (isPromise(r)) {
      return r.then((v) => {
        if (v === undefined) this.unhandled(origin, stanza);
      });
    }
    if (r === undefined) this.unhandled(origin, stanza);
  }

  /**
   * Routes a stanza to its destination. `preEvents` is true for stanzas from
   * a local client (fires the outbound `pre-*` events).
   */
  post(origin: Origin, stanza: Stanza, preEvents: boolean): unknown {
    const attrs = stanza.attrs;
    const to = attrs.to;
    let dest: Dest;
    let destHost: string;
    let toSelf = false;
    let toUser: string | undefined;
    if (to === undefined) {
      dest = "bare";
      destHost = origin.host;
      toSelf = true;
      toUser = origin.username;
    } else {
      const at = to.indexOf("@");
      const slash = to.indexOf("/");
      const hasNode = at !== -1 && (slash === -1 || at < slash);
      if (!hasNode) {
        dest = "host";
        destHost = slash === -1 ? to : to.slice(0, slash);
      } else if (slash !== -1) {
        dest = "full";
        destHost = to.slice(at + 1, slash);
        toUser = to.slice(0, at);
      } else {
        dest = "bare";
        destHost = to.slice(at + 1);
        toUser = to.slice(0, at);
        if (
          origin.username !== undefined && origin.type === "c2s" &&
          destHost === origin.host && toUser === origin.username
        ) {
          delete attrs.to;
          toSelf = true;
        }
      }
    }
    const event: StanzaEvent = { origin, stanza, to_self: toSelf, to_user: toUser };
    return this.runStages(
      preEvents ? STAGE_PRE_STANZA : STAGE_DELIVER,
      event,
      dest,
      destHost,
    );
  }

  /** Sends a stanza from a host or module: no `pre-*` events. */
  route(origin: Origin, stanza: Stanza): unknown {
    return this.post(origin, stanza, false);
  }

  private runStages(stage: number, event: StanzaEvent, dest: Dest, destHost: string): unknown {
    for (; stage < STAGE_DONE; stage++) {
      const r = this.fireStage(stage, event, dest, destHost);
      if (r === undefined) continue;
      if (isPromise(r)) return this.runStagesAsync(stage, r, event, dest, destHost);
      return r;
    }
    this.unhandledOrRemote(event, destHost);
  }

  private async runStagesAsync(
    stage: number,
    pending: PromiseLike<unknown>,
    event: StanzaEvent,
    dest: Dest,
    destHost: string,
  ): Promise<unknown> {
    let r = await pending;
    if (r !== undefined) return r;
    for (stage++; stage < STAGE_DONE; stage++) {
      r = this.fireStage(stage, event, dest, destHost);
      if (isPromise(r)) r = await r;
      if (r !== undefined) return r;
    }
    this.unhandledOrRemote(event, destHost);
  }

  private fireStage(stage: number, event: StanzaEvent, dest: Dest, destHost: string): unknown {
    const name = event.stanza.name;
    switch (stage) {
      case STAGE_PRE_STANZA: {
        const r = this.hosts.events(event.origin.host)?.fire("pre-stanza", event);
        return r;
      }
      case STAGE_PRE_KIND:
        return this.hosts.events(event.origin.host)?.fire("pre-" + name + "/" + dest, event);
      case STAGE_DELIVER:
        return this.hosts.events(destHost)?.fire(name + "/" + dest, event);
      case STAGE_SELF:
        if (!event.to_self) return undefined;
        return this.hosts.events(destHost)?.fire(name + "/self", event);
    }
  }

  private unhandledOrRemote(event: StanzaEvent, destHost: string): void {
    const { origin, stanza } = event;
    if (this.hosts.has(destHost)) return this.unhandled(origin, stanza);
    // (No handler yet: s2s will add one. A rejection is logged, never dropped.)
    const r = this.hosts.events(origin.host)?.fire("route/remote", {
      origin,
      stanza,
      from_host: origin.host,
      to_host: destHost,
    });
    if (isPromise(r)) {
      Promise.resolve(r).catch((e) => this.log.error("route/remote failed: {error}", { error: e }));
    }
    if (r !== undefined) return;
    const type = stanza.attrs.type;
    if (type !== "error" && type !== "result") {
      this.reply(
        origin,
        stanza,
        "cancel",
        "remote-server-not-found",
        "Communication with remote domains is not enabled",
      );
    }
  }

  /** Nobody handled it: RFC 6120 rules for stanzas, a stream error for the rest. */
  unhandled(origin: Origin, stanza: Stanza): void {
    const attrs = stanza.attrs;
    const isStanza = attrs.xmlns === undefined &&
      (stanza.name === "message" || stanza.name === "presence" || stanza.name === "iq");
    if (origin.type === "c2s_unauthed" || origin.type === "c2s_unbound") {
      // RFC 6120 §4.9.3.12 / §7.1: nothing is routed before auth and bind.
      origin.close?.({ condition: "not-authorized" });
      return;
    }
    if (!isStanza) {
      this.log.warn("unhandled element {tag} from {origin}", {
        tag: stanza.topTag(),
        origin: origin.full_jid ?? origin.host,
      });
      origin.close?.({ condition: "unsupported-stanza-type" });
      return;
    }
    const type = attrs.type;
    if (type === "error" || type === "result") return;
    if (stanza.name === "presence") return; // presence is never bounced with an error here
    this.reply(origin, stanza, "cancel", "service-unavailable");
  }

  private reply(
    origin: Origin,
    stanza: Stanza,
    type: ErrorType,
    condition: string,
    text?: string,
  ): void {
    const err = stanza.errorReply(type, condition, text);
    // A client gets its errors straight back; a host origin routes them.
    if (origin.type === "c2s") origin.send(err);
    else if (err.attrs.to !== undefined) {
      const r = this.post(origin, err, false);
      if (isPromise(r)) {
        Promise.resolve(r).catch((e) =>
          this.log.error("error reply failed: {error}", { error: e })
        );
      }
    }
  }

  /** A handler threw: answer an iq get/set or message, log, keep going. */
  private failed(origin: Origin, stanza: Stanza, e: unknown): void {
    const type = stanza.attrs.type;
    if (e instanceof StanzaError) {
      if (type !== "error" && type !== "result") {
        this.reply(origin, stanza, e.type, e.condition, e.text);
      }
      return;
    }
    this.log.error("error handling {tag}: {error}", { tag: stanza.topTag(), error: e });
    if (stanza.name === "iq" && (type === "get" || type === "set")) {
      this.reply(origin, stanza, "wait", "internal-server-error");
    }
  }
}

function validIq(stanza: Stanza): boolean {
  const { type, id } = stanza.attrs;
  if (!id) return false;
  if (type === "get" || type === "set") {
    let n = 0;
    for (const c of stanza.children) if (typeof c !== "string") n++;
    return n === 1;
  }
  return type === "result" || type === "error";
}
