/**
 * The `Module` object a module's default export receives: Prosody's
 * `moduleapi.lua` in camelCase (`module:hook` → `module.hook`,
 * `module:get_option_string` → `module.getOptionString`, …). Everything a
 * module adds through it (hooks, timers, items, features) is removed again
 * when the module unloads.
 *
 * @example
 * ```ts
 * import type { Module } from "../core/moduleapi.ts";
 * export default (module: Module) => {
 *   module.addFeature("urn:xmpp:ping");
 *   module.hook("iq-get/host/urn:xmpp:ping:ping", ({ origin, stanza }) => {
 *     origin.send(stanza.reply());
 *     return true;
 *   });
 * };
 * ```
 * @module
 */
import { type EventBus, type Handler, isPromise } from "./events.ts";
import type { Logger } from "./log.ts";
import type { Origin, Router, StanzaEvent } from "./router.ts";
import type { Session } from "./session.ts";
import type { SessionManager } from "./sessionmanager.ts";
import type { RosterManager } from "./rostermanager.ts";
import type { UserManager } from "./usermanager.ts";
import type { ResolvedConfig } from "./config.ts";
import type { HostTls, TlsContexts } from "./net/tlscontexts.ts";
import type { StorageManager } from "./storage/manager.ts";
import type { ArchiveStore, KeyValStore, MapStore } from "./storage/types.ts";
import { type Stanza, StanzaError } from "./xml/stanza.ts";
import { resolve } from "node:path";
import { unrefTimeout } from "./timers.ts";
import type { Metric, MetricFamily, MetricOptions, MetricType } from "./metrics.ts";
import type { ServerStats, StanzaCounter } from "./stats.ts";

/**
 * What a Module needs of the server, handed down by the composition root
 * (core/server.ts): the managers' public faces, never the server itself.
 */
export interface ModuleContext {
  readonly config: ResolvedConfig;
  /** The server-wide event bus. */
  readonly events: EventBus;
  /** A host's event bus, if the server has that host. */
  hostEvents(host: string): EventBus | undefined;
  /** What a host is: a VirtualHost ("local"), a component, or not this server's. */
  hostType(host: string): "local" | "component" | undefined;
  /** The module instances loaded on a host. */
  hostModules(host: string): Iterable<Module>;
  readonly sessions: SessionManager;
  readonly router: Router;
  readonly rosters: RosterManager;
  readonly tls: TlsContexts;
  /** A VirtualHost's accounts. */
  users(host: string): UserManager | undefined;
  /** Storage (open once the server is activated). */
  storage(): StorageManager;
  readonly loader: ModuleLoader;
  readonly sharedState: Map<string, object>;
  /** Resolves once start-up has finished. */
  readonly started: Promise<void>;
  /** When the server started serving (ms since the epoch). */
  readonly startTime: number;
  /** The server's metrics. */
  readonly stats: ServerStats;
  /** The origin of stanzas a host sends itself. */
  hostOrigin(host: string): Origin;
  logger(...category: string[]): Logger;
}

/** Loading other modules (`module.depends`), as the module manager offers it. */
export interface ModuleLoader {
  load(host: string, name: string): Promise<Module>;
  recordDependency(dependant: Module, dependency: Module): void;
}

/** Payloads of the events a module can hook, by name (extend by declaration merging). */
export interface EventMap {
  "pre-stanza": StanzaEvent;
  "stream-features": { origin: Session; features: Stanza };
  "pre-resource-bind": { session: Session; resource?: string; error?: unknown };
  "resource-bind": { session: Session };
  "pre-resource-unbind": { session: Session; error?: string };
  "resource-unbind": { session: Session; error?: string };
  "authentication-success": { session: Session };
  "authentication-failure": { session: Session; condition: string; text?: string };
  /** A stanza a connection never wrote out: deliver it as to an unavailable resource. */
  "delivery/failure": { session: Session; stanza: Stanza };
  "server-started": undefined;
  /** Before each metrics collection: set gauges now. */
  "stats-update": undefined;
  "server-stopping": { reason?: string };
  "host-activated": string;
  /** A host is no longer served (configuration reload): its streams end. */
  "host-deactivated": string;
  /** A new configuration is about to be put in force (SIGHUP). */
  "config-reloading": undefined;
  /** It is in force: global modules read their options again. */
  "config-reloaded": undefined;
  "user-deleted": { username: string; host: string };
  "user-password-changed": { username: string; host: string };
  "host-disco-info-node": DiscoNodeEvent;
  "host-disco-items-node": DiscoNodeEvent;
  "host-disco-items": { origin: Origin; stanza: Stanza; reply: Stanza };
  "account-disco-info": { origin: Origin; stanza: Stanza; reply: Stanza };
  "account-disco-items": { origin: Origin; stanza: Stanza; reply: Stanza };
}

export interface DiscoNodeEvent {
  origin: Origin;
  stanza: Stanza;
  reply: Stanza;
  node: string;
  exists?: boolean;
}

type Kind = "message" | "presence" | "iq";
type StanzaEventName =
  | `${"" | "pre-"}${Kind}/${"full" | "bare" | "host" | "self"}`
  | `iq${"" | "-get" | "-set" | "-result" | "-error"}/${
    | "full"
    | "bare"
    | "host"
    | "self"}/${string}`
  | `stanza/${string}`;

/** The payload type of an event name. */
export type EventPayload<K extends string> = K extends keyof EventMap ? EventMap[K]
  : K extends StanzaEventName ? StanzaEvent<Session>
  // deno-lint-ignore no-explicit-any
  : any;

export interface Identity {
  category: string;
  type: string;
  name?: string;
}

export interface TimerHandle {
  stop(): void;
  reschedule(delaySec: number): void;
}

/** What a module file may export besides its default setup function. */
export interface ModuleDefinition {
  default: (module: Module) => void | Promise<void>;
  /** `global` modules load once for the whole server (like Prosody's `set_global()`). */
  meta?: { scope?: "host" | "global" };
  unload?: () => void | Promise<void>;
  save?: () => unknown;
  restore?: (state: unknown) => void;
  ready?: () => void;
  /** A global module's hook to set itself up on each host that enables it. */
  addHost?: (hostModule: Module) => void | Promise<void>;
}

type StoreType = "keyval" | "map" | "archive";

/**
 * A module's metric family (`module.metric()`): `with(...labelValues)` gives
 * the metric for one label set (a host module's `host` label is filled in).
 */
export interface ModuleMetric {
  /** The family's OpenMetrics name. */
  readonly name: string;
  with(...labelValues: string[]): Metric;
}

/** Prosody's legacy `module:measure()` types. */
export type MeasureType = "amount" | "rate" | "counter" | "times" | "sizes" | "distribution";

export class Module {
  loaded = true;
  readonly log: Logger;
  /** What this module exports to modules that `depends()` on it. */
  exports: Record<string, unknown> = {};
  /** @internal bookkeeping for unload */
  readonly hooks: Array<{ bus: EventBus; name: string; fn: Handler }> = [];
  /** @internal */
  readonly items = new Map<string, unknown[]>();
  /** @internal */
  readonly timers = new Set<number>();
  /** @internal the file's exports */
  definition: ModuleDefinition | undefined;
  /** @internal */
  path = "";
  /** @internal what else to undo on unload (metrics, reported connections) */
  readonly cleanups: Array<() => void> = [];
  private metricFamilies = new Set<MetricFamily>();

  constructor(
    readonly name: string,
    /** The host this instance serves; "*" for a global module. */
    readonly host: string,
    private ctx: ModuleContext,
  ) {
    this.log = ctx.logger(host === "*" ? "global" : host, name);
  }

  get global(): boolean {
    return this.host === "*";
  }

  private get bus(): EventBus {
    return this.global ? this.ctx.events : this.ctx.hostEvents(this.host)!;
  }

  // --- events ---------------------------------------------------------------

  /** Adds a handler on this host's event bus; a non-undefined return stops the event. */
  hook<K extends string>(name: K, fn: (event: EventPayload<K>) => unknown, priority = 0): void {
    this.hookOn(this.bus, name, fn, priority);
  }

  /** Adds a handler on the server-wide bus (`user-deleted`, `server-stopping`, …). */
  hookGlobal<K extends string>(
    name: K,
    fn: (event: EventPayload<K>) => unknown,
    priority = 0,
  ): void {
    this.hookOn(this.ctx.events, name, fn, priority);
  }

  /**
   * Adds a handler on another host's bus (a global module serving hosts that
   * do not load it, e.g. s2s for components); removed on unload like the others.
   */
  hookHost(host: string, name: string, fn: Handler, priority = 0): void {
    const bus = this.ctx.hostEvents(host);
    if (bus) this.hookOn(bus, name, fn, priority);
  }

  /** Adds a handler on any bus; removed on unload like the others. */
  hookOn(bus: EventBus, name: string, fn: Handler, priority = 0): void {
    bus.on(name, fn, priority);
    this.hooks.push({ bus, name, fn });
  }

  /** Sugar for `hook("stanza/<xmlns>:<name>")`, called as `fn(origin, stanza, event)`. */
  hookTag(
    xmlns: string,
    name: string,
    fn: (origin: Session, stanza: Stanza, event: StanzaEvent<Session>) => unknown,
    priority = 0,
  ): void {
    this.hook(`stanza/${xmlns}:${name}`, (e) => fn(e.origin, e.stanza, e), priority);
  }

  unhook(name: string, fn: Handler): void {
    for (let i = this.hooks.length - 1; i >= 0; i--) {
      const h = this.hooks[i];
      if (h.name === name && h.fn === fn) {
        h.bus.off(name, fn);
        this.hooks.splice(i, 1);
      }
    }
  }

  /** Fires an event on this host's bus; the first non-undefined result, maybe as a promise. */
  fireEvent<K extends string>(name: K, data: EventPayload<K>): unknown {
    return this.bus.fire(name, data);
  }

  // --- items, features, providers -------------------------------------------

  addItem(kind: string, item: unknown): void {
    let list = this.items.get(kind);
    if (!list) this.items.set(kind, list = []);
    list.push(item);
    this.bus.emit("item-added/" + kind, { source: this, item }, this.logError);
  }

  removeItem(kind: string, item: unknown): void {
    const list = this.items.get(kind);
    const i = list?.indexOf(item) ?? -1;
    if (i === -1) return;
    list!.splice(i, 1);
    this.bus.emit("item-removed/" + kind, { source: this, item }, this.logError);
  }

  /** Items of `kind` from every module loaded on this host. */
  hostItems<T = unknown>(kind: string): T[] {
    const out: T[] = [];
    for (const m of this.ctx.hostModules(this.host)) {
      const list = m.items.get(kind);
      if (list) out.push(...list as T[]);
    }
    return out;
  }

  /** Tracks items of `kind` whatever the load order: replays existing ones, then follows. */
  handleItems<T = unknown>(
    kind: string,
    onAdded: (item: T, source: Module) => void,
    onRemoved: (item: T, source: Module) => void,
    replay = true,
  ): void {
    this.hook("item-added/" + kind, (e: { item: T; source: Module }) => {
      onAdded(e.item, e.source);
    });
    this.hook("item-removed/" + kind, (e: { item: T; source: Module }) => {
      onRemoved(e.item, e.source);
    });
    if (!replay) return;
    for (const m of this.ctx.hostModules(this.host)) {
      for (const item of (m.items.get(kind) ?? []) as T[]) onAdded(item, m);
    }
  }

  /** A disco#info feature of this host. */
  addFeature(xmlns: string): void {
    this.addItem("feature", xmlns);
  }

  /** A disco#info identity of this host. */
  addIdentity(category: string, type: string, name?: string): void {
    this.addItem("identity", { category, type, name } satisfies Identity);
  }

  /** Registers a provider (`auth`, `storage`, …): `provides("auth", provider)`. */
  provides(kind: string, item: { name?: string } & Record<string, unknown>): void {
    if (!item.name) {
      item.name = this.name.startsWith(kind + "_") ? this.name.slice(kind.length + 1) : this.name;
    }
    this.addItem(kind + "-provider", item);
  }

  /** Makes sure another module is loaded on this host; returns its exports. */
  async depends<T = Record<string, unknown>>(name: string): Promise<T> {
    const m = await this.ctx.loader.load(this.global ? "*" : this.host, name);
    this.ctx.loader.recordDependency(this, m);
    return m.exports as T;
  }

  // --- configuration ---------------------------------------------------------

  /** An option for this host (falling back to the global section), or `fallback`. */
  getOption<T = unknown>(name: string, fallback?: T): T {
    const v = this.global ? this.ctx.config.global(name) : this.ctx.config.get(this.host, name);
    return (v === undefined ? fallback : v) as T;
  }

  getOptionString(name: string, fallback?: string): string | undefined {
    const v = this.getOption<unknown>(name);
    if (v === undefined) return fallback;
    if (Array.isArray(v)) return this.badOption(name, "a string", v) ?? String(v[0]);
    return String(v);
  }

  getOptionNumber(
    name: string,
    fallback: number,
    range: { min?: number; max?: number } = {},
  ): number {
    const v = this.getOption<unknown>(name);
    if (v === undefined) return fallback;
    let n = typeof v === "number" ? v : Number(v);
    if (Number.isNaN(n)) return this.badOption(name, "a number", v) ?? fallback;
    if (range.min !== undefined && n < range.min) {
      this.log.warn("option {name} raised to its minimum {min}", { name, min: range.min });
      n = range.min;
    }
    if (range.max !== undefined && n > range.max) {
      this.log.warn("option {name} lowered to its maximum {max}", { name, max: range.max });
      n = range.max;
    }
    return n;
  }

  getOptionInteger(name: string, fallback: number, range?: { min?: number; max?: number }) {
    return Math.floor(this.getOptionNumber(name, fallback, range));
  }

  getOptionBoolean(name: string, fallback?: boolean): boolean | undefined {
    const v = this.getOption<unknown>(name);
    if (v === undefined) return fallback;
    if (v === true || v === "true" || v === 1) return true;
    if (v === false || v === "false" || v === 0) return false;
    return this.badOption(name, "a boolean", v) ?? fallback;
  }

  getOptionArray<T = string>(name: string, fallback: T[] = []): T[] {
    const v = this.getOption<unknown>(name);
    if (v === undefined) return [...fallback];
    return Array.isArray(v) ? [...v] : [v as T];
  }

  getOptionSet<T = string>(name: string, fallback: T[] = []): Set<T> {
    return new Set(this.getOptionArray(name, fallback));
  }

  /** Union of the host's and the global values (as for `admins`). */
  getOptionInheritedSet(name: string): Set<string> {
    const set = new Set<string>();
    const add = (v: unknown) => {
      if (Array.isArray(v)) v.forEach((x) => set.add(String(x)));
      else if (v !== undefined) set.add(String(v));
    };
    add(this.ctx.config.global(name));
    if (!this.global) add(this.ctx.config.raw.virtual_hosts?.[this.host]?.[name]);
    return set;
  }

  /** A duration in seconds: a number, or text like "10 minutes"; "never" is Infinity. */
  getOptionPeriod(name: string, fallback: number | string): number {
    const v = this.getOption<unknown>(name);
    const p = parsePeriod(v === undefined ? fallback : v);
    if (p === undefined) return this.badOption(name, "a period", v) ?? parsePeriod(fallback)!;
    return p;
  }

  getOptionEnum<const T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const v = this.getOption<unknown>(name);
    if (v === undefined) return fallback;
    if (fallback === v || allowed.includes(v as T)) return v as T;
    return this.badOption(name, `one of ${[fallback, ...allowed].join(", ")}`, v) ?? fallback;
  }

  /** A path, relative ones resolved against the data directory. */
  getOptionPath(name: string, fallback?: string): string | undefined {
    const v = this.getOptionString(name, fallback);
    return v === undefined ? undefined : resolve(this.ctx.config.dataPath, v);
  }

  /** A file named in the configuration, relative ones resolved against its directory. */
  getOptionFile(name: string): string | undefined {
    const v = this.getOptionString(name);
    return v === undefined ? undefined : resolve(this.ctx.config.configDir, v);
  }

  private badOption(name: string, expected: string, got: unknown): undefined {
    this.log.error("option {name}: expected {expected}, got {got}", {
      name,
      expected,
      got: JSON.stringify(got),
    });
    return undefined;
  }

  // --- storage ---------------------------------------------------------------

  openStore<T = unknown>(name?: string, type?: "keyval"): KeyValStore<T>;
  openStore<T = unknown>(name: string | undefined, type: "map"): MapStore<T>;
  openStore(name: string | undefined, type: "archive"): ArchiveStore;
  openStore(name?: string, type: StoreType = "keyval"): unknown {
    if (this.global) throw new Error("global modules have no per-host storage");
    // deno-lint-ignore no-explicit-any
    return this.ctx.storage().open(this.host, name ?? this.name, type as any);
  }

  // --- stanzas ---------------------------------------------------------------

  /**
   * Routes a stanza as if the host (or `origin`) sent it; no `pre-*` events.
   * Resolves once it is handled (await it to keep an order); an error is
   * logged, never thrown.
   */
  send(stanza: Stanza, origin?: Origin): Promise<void> {
    try {
      const r = this.ctx.router.route(origin ?? this.ctx.hostOrigin(this.host), stanza);
      if (isPromise(r)) return Promise.resolve(r).then(() => {}, this.logError);
    } catch (e) {
      this.logError(e);
    }
    return Promise.resolve();
  }

  /** Sends to each JID a copy of `stanza` addressed to it. */
  broadcast(jids: Iterable<string>, stanza: Stanza): void {
    for (const jid of jids) {
      const copy = stanza.clone();
      copy.attrs.to = jid;
      this.send(copy);
    }
  }

  /**
   * Sends an iq get/set and resolves with the result event; rejects with a
   * `StanzaError` on an error reply or after `timeoutMs` (default 120 s),
   * and with an `Error` if the module unloads first. The iq gets a unique id
   * when it has none; only a reply from the JID it was sent to (with that
   * id, to the JID it came from) settles it. `from` defaults to this host
   * and may be a bare or full JID.
   */
  sendIq(
    stanza: Stanza,
    opts: { origin?: Origin; timeoutMs?: number } = {},
  ): Promise<StanzaEvent> {
    const attrs = stanza.attrs;
    attrs.id ??= "iq" + crypto.randomUUID();
    attrs.from ??= this.host;
    const { id, from, to } = attrs as { id: string; from: string; to?: string };
    const expected = to ?? bareOf(from);
    const fromHost = bareOf(from).split("@").pop()!;
    const bus = this.ctx.hostEvents(fromHost) ?? this.bus;
    // Replies to a host or bare JID fire iq-result/… events (mod_iq); replies to
    // a full JID are routed to a session, so they are caught before that.
    const kind = !from.includes("@") ? "host" : from.includes("/") ? "full" : "bare";
    const events = kind === "full"
      ? ["iq/full"]
      : [`iq-result/${kind}/${id}`, `iq-error/${kind}/${id}`];
    return new Promise((resolve, reject) => {
      const matches = (e: StanzaEvent) => {
        const r = e.stanza.attrs;
        return r.id === id && (r.type === "result" || r.type === "error") &&
          (kind !== "full" || r.to === from) && (r.from ?? bareOf(r.to ?? "")) === expected;
      };
      const onReply = (e: StanzaEvent) => {
        if (!matches(e)) return undefined; // someone else's, or a forgery: not ours
        done();
        if (e.stanza.attrs.type === "result") {
          resolve(e);
        } else {
          const err = e.stanza.getError();
          reject(
            new StanzaError(
              (err.type ?? "cancel") as "cancel",
              err.condition ?? "undefined-condition",
              err.text,
            ),
          );
        }
        return true;
      };
      const cancel = () => {
        done();
        reject(new Error(`module ${this.name} unloaded before the iq ${id} was answered`));
      };
      const done = () => {
        for (const name of events) bus.off(name, onReply);
        clearTimeout(timer);
        this.timers.delete(timer);
        this.pendingIqs.delete(cancel);
      };
      const timer = unrefTimeout(() => {
        done();
        reject(new StanzaError("wait", "remote-server-timeout", "No response to iq"));
      }, opts.timeoutMs ?? 120_000);
      this.timers.add(timer);
      this.pendingIqs.add(cancel);
      for (const name of events) bus.on(name, onReply, 1000);
      this.send(stanza, opts.origin);
    });
  }

  /** @internal iqs waiting for a reply: each function rejects its promise (on unload). */
  readonly pendingIqs = new Set<() => void>();

  /** Fires an event on another host's bus (a global module serving that host's streams). */
  fireOn<K extends string>(host: string, name: K, data: EventPayload<K>): unknown {
    return this.ctx.hostEvents(host)?.fire(name, data);
  }

  // --- sessions: who is online, and sending to them ----------------------------

  /** The bound session with this full JID, on any host of the server (not one that ended). */
  fullSession(jid: string): Session | undefined {
    return this.ctx.sessions.fullSession(jid);
  }

  /** The connected resources of a user of this host (`host`: another of the server's). */
  resources(username: string, host = this.host): Iterable<Session> {
    return this.ctx.sessions.resources(username, host);
  }

  /** A user's resources with available presence. */
  availableResources(username: string, host = this.host): Session[] {
    return this.ctx.sessions.available(username, host);
  }

  /** The resources a message to the user's bare JID goes to (RFC 6121 §8.5.2.1.1). */
  topResources(username: string, host = this.host): Session[] {
    return this.ctx.sessions.top(username, host);
  }

  /** Whether a user of this host has a bound session. */
  isOnline(username: string, host = this.host): boolean {
    return this.ctx.sessions.user(username, host) !== undefined;
  }

  /** Sends to each available resource of a user, serialised once; returns how many. */
  sendToAvailable(username: string, stanza: Stanza, host = this.host): number {
    return this.ctx.sessions.sendToAvailableResources(username, host, stanza);
  }

  /** Sends to each resource that fetched the roster, addressed to it; returns how many. */
  sendToInterested(username: string, stanza: Stanza, host = this.host): number {
    return this.ctx.sessions.sendToInterestedResources(username, host, stanza);
  }

  /** SASL succeeded: the session belongs to `username` from now on (true), or why not. */
  authenticate(session: Session, username: string): true | string {
    return this.ctx.sessions.makeAuthenticated(session, username);
  }

  /** Binds a resource to an authenticated session (throws a `BindError` when refused). */
  bindResource(session: Session, resource?: string): Promise<void> {
    return this.ctx.sessions.bindResource(session, resource);
  }

  /** Takes an ended session out of the tables, firing the unbind events. */
  destroySession(session: Session, error?: string): Promise<void> {
    return this.ctx.sessions.destroySession(session, error);
  }

  /** Hands an element a session received to the router (transports: c2s, later WebSocket, BOSH). */
  processStanza(session: Session, stanza: Stanza): unknown {
    return this.ctx.router.process(session, stanza);
  }

  // --- hosts, accounts, rosters, TLS -----------------------------------------------

  /** What `host` is to this server: a VirtualHost ("local"), a component, or nothing. */
  hostType(host: string): "local" | "component" | undefined {
    return this.ctx.hostType(host);
  }

  /** The server's VirtualHosts, in configuration order (the first is the default). */
  localHosts(): readonly string[] {
    return this.ctx.config.hosts;
  }

  /** The server's components. */
  components(): readonly string[] {
    return this.ctx.config.components;
  }

  /** This host's accounts: exists, create, password, delete (VirtualHosts only). */
  get users(): UserManager {
    const users = this.ctx.users(this.host);
    if (!users) throw new Error(`${this.host} has no accounts (it is not a VirtualHost)`);
    return users;
  }

  /** The users' rosters: load, modify under the user's lock, subscription queries. */
  get rosters(): RosterManager {
    return this.ctx.rosters;
  }

  /** This host's (or another's) certificate and TLS context, once loaded. */
  tlsFor(host = this.host): HostTls | undefined {
    return this.ctx.tls.peek(host);
  }

  /** Loads (once) a host's certificate and TLS context. */
  loadTls(host = this.host): Promise<HostTls> {
    return this.ctx.tls.get(host);
  }

  /** When the server started serving, in ms since the epoch. */
  get startTime(): number {
    return this.ctx.startTime;
  }

  // --- metrics ---------------------------------------------------------------

  /**
   * Declares an OpenMetrics family named `cadence_mod_<module>_<name>` (or
   * returns it if declared already). On a host module a `host` label comes
   * first and is filled in, so `with()` takes only the module's own labels.
   * The module's metrics go when it unloads.
   *
   * @example
   * ```ts
   * const uploads = module.metric("counter", "uploads", { help: "Files", labels: ["type"] });
   * const images = uploads.with("image"); // keep it
   * images.add(1); // cadence_mod_upload_uploads_total{host="example.com",type="image"} 1
   * ```
   */
  metric(type: MetricType, name: string, opts: MetricOptions = {}): ModuleMetric {
    const own = opts.labels ?? [];
    const family = this.ctx.stats.registry.family(type, `cadence_mod_${this.name}_${name}`, {
      ...opts,
      labels: this.global ? own : ["host", ...own],
    });
    if (!this.metricFamilies.has(family)) {
      this.metricFamilies.add(family);
      family.users++;
      const registry = this.ctx.stats.registry;
      this.cleanups.push(() => {
        if (!this.global) family.removeWhere(0, this.host);
        if (--family.users === 0) registry.remove(family.name);
      });
    }
    if (this.global) return family;
    const host = this.host;
    let single: Metric | undefined;
    return {
      name: family.name,
      with: (...values: string[]) =>
        values.length === 0 ? single ??= family.with(host) : family.with(host, ...values),
    };
  }

  /**
   * Prosody's legacy `module:measure()`, on top of {@link metric}: `amount`
   * is a gauge (`fn(value)`), `rate`/`counter` a counter (`fn(n = 1)`),
   * `sizes`/`distribution` a histogram (`fn(value)`), `times` a histogram
   * in seconds whose `fn()` starts a timing and returns the function that
   * ends it.
   *
   * @example
   * ```ts
   * const timeIt = module.measure("lookup", "times");
   * const done = timeIt();
   * await lookup();
   * done();
   * ```
   */
  measure(name: string, type: "times"): () => () => void;
  measure(name: string, type: Exclude<MeasureType, "times">): (value?: number) => void;
  measure(name: string, type: MeasureType): unknown {
    switch (type) {
      case "amount": {
        const m = this.metric("gauge", name).with();
        return (v = 0) => m.set(v);
      }
      case "rate":
      case "counter": {
        const m = this.metric("counter", name).with();
        return (n = 1) => m.add(n);
      }
      case "times": {
        const m = this.metric("histogram", name, { unit: "seconds" }).with();
        return () => {
          const t0 = performance.now();
          return () => m.sample((performance.now() - t0) / 1000);
        };
      }
      default: {
        const m = this.metric("histogram", name, {
          buckets: [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000],
        }).with();
        return (v = 0) => m.sample(v);
      }
    }
  }

  /**
   * A network module reports how many connections of `type` it has open
   * (`cadence_connections{type}`, read at each collection) until it unloads.
   */
  reportConnections(type: string, count: () => number): void {
    this.cleanups.push(this.ctx.stats.reportConnections(type, count));
  }

  /** The server's stanza counters: received from connections, sent to clients. */
  get stanzaCounters(): { received: StanzaCounter; sent: StanzaCounter } {
    return { received: this.ctx.stats.received, sent: this.ctx.stats.sent };
  }

  /** Fires `stats-update`, then renders every metric in OpenMetrics text. */
  collectMetrics(): Promise<string> {
    return this.ctx.stats.collect();
  }

  // --- time ------------------------------------------------------------------

  /**
   * Runs `fn` after `delaySec` seconds; if it returns (or resolves to) a
   * number, runs again after that many seconds. Cancelled on unload.
   */
  addTimer(delaySec: number, fn: () => unknown): TimerHandle {
    let id = 0;
    const arm = (sec: number) => {
      id = unrefTimeout(async () => {
        this.timers.delete(id);
        if (!this.loaded) return;
        try {
          const next = await fn();
          if (typeof next === "number" && this.loaded) arm(next);
        } catch (e) {
          this.log.error("timer failed: {error}", { error: e });
        }
      }, sec * 1000);
      this.timers.add(id);
    };
    arm(delaySec);
    return {
      stop: () => {
        clearTimeout(id);
        this.timers.delete(id);
      },
      reschedule: (sec: number) => {
        clearTimeout(id);
        this.timers.delete(id);
        arm(sec);
      },
    };
  }

  /** Runs `fn` once the server has started (at once if it already has); errors are logged. */
  onReady(fn: () => unknown): void {
    this.ctx.started.then(() => {
      if (this.loaded) return fn();
    }).catch(this.logError);
  }

  /**
   * Keeps a network module's listeners where the configuration wants them:
   * `open(w)` runs when the server starts (a port that cannot be had stops
   * the start), at once if the module loads later, and again after each
   * configuration reload that changes `wanted()` (after `close()`); a failed
   * open is tried again by the next reload.
   */
  followListeners<W>(
    wanted: () => W,
    close: () => unknown,
    open: (w: W) => Promise<void>,
  ): void {
    let current: string | undefined;
    const update = async () => {
      const w = wanted();
      const key = JSON.stringify(w);
      if (key === current) return;
      await close();
      current = key;
      try {
        await open(w);
      } catch (e) {
        current = undefined;
        throw e;
      }
    };
    this.hookGlobal("server-started", update);
    this.onReady(update);
    this.hookGlobal("config-reloaded", update);
  }

  /** Prosody's deprecated alias of `onReady`. */
  once(fn: () => unknown): void {
    this.onReady(fn);
  }

  /** Logs an error of this module's with its stack (for errors nobody else handles). */
  readonly logError = (error: unknown): void => {
    this.log.error("{error}", { error });
  };

  /**
   * State shared between modules under a path: "name" is this host and
   * module's, "a/b" this host's, "/abs/path" global. Created on first use.
   */
  shared<T extends object>(path: string, init: () => T): T {
    const full = path.startsWith("/")
      ? path
      : path.includes("/")
      ? `/${this.host}/${path}`
      : `/${this.host}/${this.name}/${path}`;
    const registry = this.ctx.sharedState;
    let v = registry.get(full) as T | undefined;
    if (v === undefined) registry.set(full, v = init());
    return v;
  }
}

function bareOf(jid: string): string {
  const slash = jid.indexOf("/");
  return slash === -1 ? jid : jid.slice(0, slash);
}

const UNITS: Record<string, number> = {
  second: 1,
  sec: 1,
  s: 1,
  minute: 60,
  min: 60,
  hour: 3600,
  h: 3600,
  day: 86400,
  d: 86400,
  week: 604800,
  w: 604800,
  month: 2629746,
  mo: 2629746,
  m: 2629746, // as in Prosody's archive_expires_after = "1m"
  year: 31556952,
  y: 31556952,
};

/**
 * Seconds from a number or text like "2 days", "10 minutes" or Prosody's
 * short forms "1d", "1w", "1m" (a month), "1y"; "never"/false → Infinity.
 */
export function parsePeriod(v: unknown): number | undefined {
  if (v === false || v === "never") return Infinity;
  if (typeof v === "number") return v < 0 ? Infinity : v;
  if (typeof v !== "string") return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)?\s*([a-z]+?)s?\s*$/i.exec(v);
  if (!m) return /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : undefined;
  const unit = UNITS[m[2].toLowerCase()] ?? UNITS[m[2].toLowerCase() + "s"];
  return unit === undefined ? undefined : Number(m[1] ?? 1) * unit;
}
