/**
 * The server: the composition root. It builds the core managers, hands each
 * only the narrow interface it needs (no manager knows this file), gives
 * modules their {@link ModuleContext}, and runs the start-up and shutdown
 * sequence (Prosody's `util/startup.lua`, reduced).
 *
 * `activate()` opens storage and activates every host: its auth provider,
 * then its modules. `start()` then fires `server-started`, on which network
 * modules open their listeners. `stop()` fires `server-stopping` (c2s closes
 * every stream), unloads modules and closes storage.
 *
 * @example
 * ```ts
 * const server = new Server(validateConfig(await loadConfig(), opts));
 * await server.start();
 * // …
 * await server.stop("shutdown");
 * ```
 * @module
 */
import { EventBus, isPromise } from "./events.ts";
import type { ResolvedConfig } from "./config.ts";
import { HostManager } from "./hostmanager.ts";
import { getLogger, type Logger } from "./log.ts";
import { ModuleManager } from "./modulemanager.ts";
import type { ModuleContext } from "./moduleapi.ts";
import { type Origin, Router } from "./router.ts";
import { SessionManager } from "./sessionmanager.ts";
import { RosterManager } from "./rostermanager.ts";
import { StorageManager } from "./storage/manager.ts";
import { TlsContexts } from "./net/tlscontexts.ts";
import { ServerStats } from "./stats.ts";
import { type AuthProvider, UserManager } from "./usermanager.ts";
import type { Stanza } from "./xml/stanza.ts";

export class Server {
  readonly events = new EventBus();
  readonly hosts: HostManager;
  readonly sessions: SessionManager;
  readonly router: Router;
  readonly modules: ModuleManager;
  /** Users' rosters and subscription queries. */
  readonly rosters: RosterManager;
  /** Certificates and TLS contexts per host. */
  readonly tls: TlsContexts;
  /** Tables shared between modules (`module.shared()`). */
  readonly sharedState = new Map<string, object>();
  /** Resolves once start-up has finished (`module.onReady`). */
  readonly started: Promise<void>;
  /** When the process started serving, in ms since the epoch (uptime). */
  readonly startTime = Date.now();
  /** This server's metrics (one registry per server). */
  readonly stats: ServerStats;
  readonly log: Logger;
  private _storage: StorageManager | undefined;
  private markStarted!: () => void;
  private state: "new" | "activating" | "active" | "running" | "stopping" | "stopped" = "new";
  private hostOrigins = new Map<string, Origin>();

  /** What modules are given: the managers' public faces. */
  readonly moduleContext: ModuleContext;

  /** The configuration in force (replaced by {@link reload}). */
  config: ResolvedConfig;

  constructor(config: ResolvedConfig) {
    this.config = config;
    this.log = getLogger("server");
    const hosts = this.hosts = new HostManager();
    // Everything reads the configuration through this.config: a reload swaps it.
    // deno-lint-ignore no-this-alias
    const server = this;
    this.sessions = new SessionManager({
      events: (host) => hosts.events(host),
      option: (host, name) => this.config.get(host, name),
    });
    this.router = new Router(hosts, getLogger("router"));
    this.stats = new ServerStats({
      events: this.events,
      sessions: this.sessions,
      startTime: this.startTime,
    });
    this.router.received = this.stats.received;
    this.tls = new TlsContexts(config);
    this.rosters = new RosterManager({
      store: (host) => this.storage.open(host, "roster", "keyval"),
      sessions: this.sessions,
      events: (host) => hosts.events(host),
    });
    this.started = new Promise((resolve) => this.markStarted = resolve);
    this.modules = new ModuleManager({
      get config() {
        return server.config;
      },
      hosts,
      events: this.events,
      context: () => this.moduleContext,
    });
    this.moduleContext = {
      get config() {
        return server.config;
      },
      events: this.events,
      hostEvents: (host) => hosts.events(host),
      hostType: (host) => hosts.get(host)?.type,
      hostModules: (host) => hosts.get(host)?.modules.values() ?? [],
      sessions: this.sessions,
      router: this.router,
      rosters: this.rosters,
      tls: this.tls,
      users: (host) => hosts.get(host)?.users,
      storage: () => this.storage,
      loader: this.modules,
      sharedState: this.sharedState,
      started: this.started,
      startTime: this.startTime,
      stats: this.stats,
      hostOrigin: (host) => this.hostOrigin(host),
      logger: (...category) => getLogger(...category),
    };
  }

  get storage(): StorageManager {
    if (!this._storage) throw new Error("storage is not open before activate()");
    return this._storage;
  }

  logger(...category: string[]): Logger {
    return getLogger(...category);
  }

  /** The account manager of a VirtualHost. */
  users(host: string): UserManager | undefined {
    return this.hosts.get(host)?.users;
  }

  /** An origin for stanzas a host sends itself (Prosody's `hosts[host]` as origin). */
  hostOrigin(host: string): Origin {
    let o = this.hostOrigins.get(host);
    if (!o) {
      o = {
        type: "local",
        host,
        send: (stanza: Stanza | string) => {
          if (typeof stanza === "string") return false; // a host has no stream to write to
          const r = this.router.route(o!, stanza);
          if (isPromise(r)) {
            Promise.resolve(r).catch((e) =>
              this.log.error("routing failed: {error}", { error: e })
            );
          }
          return true;
        },
      };
      this.hostOrigins.set(host, o);
    }
    return o;
  }

  /** Opens storage and activates every host with its modules; opens no port. */
  async activate(): Promise<void> {
    if (this.state !== "new") return;
    this.state = "activating";
    const c = this.config;
    this._storage = new StorageManager({
      dataPath: c.dataPath,
      storage: c.global("storage") as string | Record<string, string> | undefined,
      defaultStorage: c.global("default_storage") as string | undefined,
      archiveItemLimit: c.global("storage_archive_item_limit") as number | undefined,
      timing: this.stats.storage,
    });
    for (const name of c.hosts) await this.activateHost(name, "local");
    for (const name of c.components) await this.activateHost(name, "component");
    this.state = "active";
  }

  private async activateHost(name: string, type: "local" | "component"): Promise<void> {
    this.hosts.add(name, type);
    await this.loadHostModules(name, type);
    await this.events.fire("host-activated", name);
  }

  private async loadHostModules(name: string, type: "local" | "component"): Promise<void> {
    if (type === "local") await this.activateUsers(name);
    for (const m of this.config.modulesFor(name)) await this.modules.load(name, m);
  }

  /**
   * Puts a new configuration in force without dropping sessions (SIGHUP):
   * hosts gone are deactivated (their streams end with `host-gone`), new
   * ones activated, every other host's modules restarted with the new
   * options and module list, certificates read again. Streams read nothing
   * meanwhile (`config-reloading` … `config-reloaded`, which global modules
   * such as c2s use to re-read their options).
   */
  async reload(next: ResolvedConfig): Promise<void> {
    if (this.state !== "running") throw new Error("the server is not running");
    const r = this.events.fire("config-reloading", undefined);
    if (isPromise(r)) await r;
    try {
      this.config = next;
      this.tls.reset(next);
      const typeIn = (name: string) =>
        next.hosts.includes(name)
          ? "local"
          : next.components.includes(name)
          ? "component"
          : undefined;
      for (const host of [...this.hosts.all()]) {
        const type = typeIn(host.name);
        await this.modules.unloadAll(host.name);
        if (type === host.type) {
          await this.loadHostModules(host.name, type);
        } else {
          await this.events.fire("host-deactivated", host.name);
          this.hosts.remove(host.name);
          if (type) await this.activateHost(host.name, type);
        }
      }
      for (const name of next.hosts) {
        if (!this.hosts.has(name)) await this.activateHost(name, "local");
      }
      for (const name of next.components) {
        if (!this.hosts.has(name)) await this.activateHost(name, "component");
      }
      for (const host of next.hosts) await this.tls.get(host);
    } finally {
      const done = this.events.fire("config-reloaded", undefined);
      if (isPromise(done)) await done;
    }
  }

  private async activateUsers(host: string): Promise<void> {
    const auth = String(this.config.get(host, "authentication") ?? "internal_hashed");
    const m = await this.modules.load(host, "auth_" + auth);
    const provider = m.items.get("auth-provider")?.[0] as AuthProvider | undefined;
    if (!provider) throw new Error(`module auth_${auth} provided no auth provider`);
    this.hosts.get(host)!.users = new UserManager(host, provider, {
      events: this.events,
      purge: (h, username) => this.storage.purge(h, username),
    });
  }

  /** Activates if needed, then fires `server-started`: listeners open. */
  async start(): Promise<void> {
    await this.activate();
    const r = this.events.fire("server-started", undefined);
    if (isPromise(r)) await r;
    this.state = "running";
    this.markStarted();
    this.log.info("data in {path}", { path: this.config.dataPath });
  }

  /** Closes every stream and listener, unloads modules, closes storage. */
  async stop(reason = "shutdown"): Promise<void> {
    if (this.state === "stopping" || this.state === "stopped") return;
    this.state = "stopping";
    this.log.info("stopping: {reason}", { reason });
    const r = this.events.fire("server-stopping", { reason });
    if (isPromise(r)) await r;
    for (const host of [...this.hosts.names()]) await this.modules.unloadAll(host);
    await this.modules.unloadGlobals();
    this._storage?.close();
    this.stats.stop();
    this.state = "stopped";
  }
}
