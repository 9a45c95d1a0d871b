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
  readonly log: Logger;
  private _storage: StorageManager | undefined;
  private markStarted!: () => void;
  private state: "new" | "activating" | "active" | "running" | "stopping" | "stopped" = "new";
  private hostOrigins = new Map<string, Origin>();

  /** What modules are given: the managers' public faces. */
  readonly moduleContext: ModuleContext;

  constructor(readonly config: ResolvedConfig) {
    this.log = getLogger("server");
    const hosts = this.hosts = new HostManager();
    this.sessions = new SessionManager({
      events: (host) => hosts.events(host),
      option: (host, name) => config.get(host, name),
    });
    this.router = new Router(hosts, getLogger("router"));
    this.tls = new TlsContexts(config);
    this.rosters = new RosterManager({
      store: (host) => this.storage.open(host, "roster", "keyval"),
      sessions: this.sessions,
      events: (host) => hosts.events(host),
    });
    this.started = new Promise((resolve) => this.markStarted = resolve);
    this.modules = new ModuleManager({
      config,
      hosts,
      events: this.events,
      context: () => this.moduleContext,
    });
    this.moduleContext = {
      config,
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
    });
    for (const name of c.hosts) {
      this.hosts.add(name, "local");
      await this.activateUsers(name);
      for (const m of c.modulesFor(name)) await this.modules.load(name, m);
      await this.events.fire("host-activated", name);
    }
    for (const name of c.components) {
      this.hosts.add(name, "component");
      for (const m of c.modulesFor(name)) await this.modules.load(name, m);
      await this.events.fire("host-activated", name);
    }
    this.state = "active";
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
    this.state = "stopped";
  }
}
