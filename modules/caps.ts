/**
 * Entity Capabilities (XEP-0115) of the server's own clients, for PEP's
 * `+notify` filtering (as Prosody's mod_pep keeps them): the features behind
 * the `<c xmlns='http://jabber.org/protocol/caps'/>` of each session's
 * available presence.
 *
 * A `ver` already verified is looked up in a server-wide cache (the
 * `caps_cache_size` most recently used, 10,000 by default). Otherwise the
 * server asks the client (disco#info on `node#ver`, from the host); while it
 * waits, other sessions advertising the same `ver` wait for that one answer.
 * An answer is cached only when its hash is the `ver` (§5.4): a wrong or
 * ill-formed answer serves the session that gave it, and the next session
 * with that `ver` is asked in turn. Legacy caps (no `hash`) and unknown hash
 * functions are asked for every session and never cached. An error or a
 * timeout (`caps_query_timeout`, 30 s) leaves the session without features.
 *
 * Presence without `<c/>` (and unavailable presence) forgets a session's
 * features; so does the end of the session.
 *
 * Exports, for other modules (`await module.depends("caps")`):
 * - `featuresOf(session)`: the session's features, or undefined when not
 *   (yet) known;
 * - `featuresOfJid(jid, c)`: the features behind the `<c/>` of a JID with no
 *   session here (a remote contact's resource), from the same cache, asked
 *   (from the host) and verified the same way; undefined when not known;
 * - the `caps-updated` event on the host, `{ session, features }`, fired
 *   whenever a session's features become known or change to another set.
 *   Features forgotten (presence without `<c/>`, or a new `ver` being asked
 *   for) fire nothing: `featuresOf` returns undefined from then on.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { isPromise } from "../core/events.ts";
import { CAPS_NS, capsVer, DISCO_INFO_NS, discoFeatures, supportedHash } from "../core/xml/caps.ts";
import { element, type Stanza } from "../core/xml/stanza.ts";

/** The payload of `caps-updated`. */
export interface CapsUpdatedEvent {
  session: Session;
  features: ReadonlySet<string>;
}

declare module "../core/moduleapi.ts" {
  interface EventMap {
    "caps-updated": CapsUpdatedEvent;
  }
}

/** What the module exports. */
export interface CapsExports {
  featuresOf(session: Session): ReadonlySet<string> | undefined;
  featuresOfJid(jid: string, c: Stanza): Promise<ReadonlySet<string> | undefined>;
}

/** Questions to remote JIDs (not this server's sessions) waiting at once. */
const MAX_REMOTE_QUERIES = 100;

/** An answer listing more features, or longer ones, than this is not cached (memory). */
const MAX_CACHED_FEATURES = 1000;
const MAX_CACHED_CHARS = 8 * 1024;

interface CapsState {
  /** hash, node and ver as advertised: the same `<c/>` again changes nothing. */
  key: string;
  features?: ReadonlySet<string>;
}

interface SharedCache {
  /** Verified features by `hash ver`, least recently used first. */
  cache: Map<string, ReadonlySet<string>>;
  /** The query in flight for a `hash ver`; settles (never rejects) when it is answered. */
  inflight: Map<string, Promise<void>>;
}

export default function caps(module: Module) {
  const maxEntries = module.getOptionInteger("caps_cache_size", 10_000, { min: 1 });
  const timeoutMs = module.getOptionPeriod("caps_query_timeout", 30) * 1000;
  const { cache, inflight } = module.shared<SharedCache>("/caps/verified", () => ({
    cache: new Map(),
    inflight: new Map(),
  }));
  const sessions = new WeakMap<Session, CapsState>();
  /** Ends the waits for a session's answers (when it ends). */
  const aborts = new WeakMap<Session, Set<() => void>>();

  function cacheGet(key: string): ReadonlySet<string> | undefined {
    const hit = cache.get(key);
    if (hit !== undefined) {
      cache.delete(key);
      cache.set(key, hit);
    }
    return hit;
  }

  function cachePut(key: string, features: ReadonlySet<string>): void {
    cache.delete(key);
    cache.set(key, features);
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
  }

  const featuresOf = (session: Session): ReadonlySet<string> | undefined =>
    sessions.get(session)?.features;
  module.exports.featuresOf = featuresOf satisfies CapsExports["featuresOf"];

  function fire(session: Session, features: ReadonlySet<string>): void {
    try {
      const r = module.fireEvent("caps-updated", { session, features });
      if (isPromise(r)) Promise.resolve(r).catch(module.logError);
    } catch (e) {
      module.logError(e);
    }
  }

  const current = (session: Session, state: CapsState) =>
    sessions.get(session) === state && !session.destroyed;

  function settle(session: Session, state: CapsState, features: ReadonlySet<string>): void {
    if (!current(session, state)) return;
    state.features = features;
    fire(session, features);
  }

  /**
   * Asks `target` (a session, or a JID with no session here) for `node#ver`;
   * undefined (logged) on an error or timeout.
   */
  async function ask(
    target: Session | string,
    node: string,
    ver: string,
  ): Promise<Stanza | undefined> {
    const session = typeof target === "string" ? undefined : target;
    const jid = session ? session.full_jid! : target as string;
    const request = element("iq", { type: "get", to: jid })
      .tag("query", { xmlns: DISCO_INFO_NS, node: `${node}#${ver}` }).reset();
    // A session that ends never answers: stop waiting then (others may wait on this).
    let cancel!: () => void;
    const ended = new Promise<undefined>((r) => cancel = () => r(undefined));
    let cancels = session ? aborts.get(session) : undefined;
    if (session && !cancels) aborts.set(session, cancels = new Set());
    cancels?.add(cancel);
    try {
      const reply = module.sendIq(request, { timeoutMs });
      reply.catch(() => {}); // may settle after the session ended: nobody listens then
      const event = await Promise.race([reply, ended]);
      if (event === undefined) {
        module.log.debug("caps: {jid} went away before answering", { jid });
        return undefined;
      }
      const { stanza } = event;
      const query = stanza.getChild("query", DISCO_INFO_NS);
      if (!query) {
        module.log.debug("caps: {jid} answered without a query", { jid: stanza.attrs.from });
      }
      return query;
    } catch (error) {
      module.log.debug("caps: no disco#info from {jid} for {ver}: {error}", {
        jid,
        ver,
        error: error instanceof Error ? error.message : String(error),
      });
      return undefined;
    } finally {
      cancels?.delete(cancel);
    }
  }

  /**
   * The features behind `node#ver` for `target`: from the cache, or the
   * answer another query for the same ver gets, or asked; undefined when
   * unknown or when `wanted()` turns false while waiting.
   */
  async function resolve(
    target: Session | string,
    node: string,
    ver: string,
    hash: string | undefined,
    wanted: () => boolean,
  ): Promise<ReadonlySet<string> | undefined> {
    const jid = typeof target === "string" ? target : target.full_jid;
    if (hash === undefined || !supportedHash(hash)) {
      // Nothing to verify with (§5.4 rule 3): for this target only.
      const answer = await ask(target, node, ver);
      return answer ? discoFeatures(answer) : undefined;
    }
    const key = `${hash} ${ver}`;
    for (;;) {
      const hit = cacheGet(key);
      if (hit) return hit;
      const pending = inflight.get(key);
      if (!pending) break;
      await pending;
      if (!wanted()) return undefined;
    }
    // This target is asked; others with the same ver wait for its answer.
    let done!: () => void;
    inflight.set(key, new Promise<void>((r) => done = r));
    try {
      const answer = await ask(target, node, ver);
      if (!answer) return undefined;
      const features = discoFeatures(answer);
      let computed: string | undefined;
      try {
        computed = await capsVer(answer, hash);
      } catch (error) {
        module.log.debug("caps: ill-formed disco#info from {jid}: {error}", {
          jid,
          error: error instanceof Error ? error.message : String(error),
        });
      }
      let chars = 0;
      for (const f of features) chars += f.length;
      if (computed === ver && features.size <= MAX_CACHED_FEATURES && chars <= MAX_CACHED_CHARS) {
        cachePut(key, features);
      } else if (computed !== undefined && computed !== ver) {
        module.log.debug("caps: {jid} advertised ver {ver} but its features hash to {computed}", {
          jid,
          ver,
          computed,
        });
      }
      return features;
    } finally {
      inflight.delete(key);
      done();
    }
  }

  function update(session: Session, stanza: Stanza): void {
    const type = stanza.attrs.type;
    if (type !== undefined && type !== "unavailable") return;
    const c = type === undefined ? stanza.getChild("c", CAPS_NS) : undefined;
    const node = c?.attrs.node;
    const ver = c?.attrs.ver;
    const old = sessions.get(session);
    if (!node || !ver) {
      sessions.delete(session);
      return;
    }
    const hash = c!.attrs.hash?.toLowerCase();
    const key = `${hash ?? ""}\n${node}\n${ver}`;
    if (old?.key === key) return; // known already, or being asked for
    const state: CapsState = { key };
    sessions.set(session, state);
    const hit = hash !== undefined && supportedHash(hash) ? cacheGet(`${hash} ${ver}`) : undefined;
    if (hit) return settle(session, state, hit);
    resolve(session, node, ver, hash, () => current(session, state)).then((features) => {
      if (features) settle(session, state, features);
    }).catch(module.logError);
  }

  // A JID with no session here (a remote contact's resource): asked from the host, a
  // bounded number of such questions at once (what remote servers can make us wait on).
  let remoteQueries = 0;
  module.exports.featuresOfJid = (async (jid: string, c: Stanza) => {
    const node = c.attrs.node;
    const ver = c.attrs.ver;
    if (!node || !ver) return undefined;
    const hash = c.attrs.hash?.toLowerCase();
    const hit = hash !== undefined && supportedHash(hash) ? cacheGet(`${hash} ${ver}`) : undefined;
    if (hit) return hit;
    if (remoteQueries >= MAX_REMOTE_QUERIES) return undefined;
    remoteQueries++;
    try {
      return await resolve(jid, node, ver, hash, () => true);
    } finally {
      remoteQueries--;
    }
  }) satisfies CapsExports["featuresOfJid"];

  // The user's own (undirected) presence, before presence broadcasts it.
  module.hook("pre-presence/bare", ({ origin, stanza }: StanzaEvent<Session>) => {
    if (origin.type !== "c2s" || stanza.attrs.to !== undefined) return;
    try {
      update(origin, stanza);
    } catch (e) {
      module.logError(e);
    }
  }, 100);

  module.hook("resource-unbind", ({ session }) => {
    sessions.delete(session);
    for (const cancel of aborts.get(session) ?? []) cancel();
    aborts.delete(session);
  });
}
