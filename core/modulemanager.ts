/**
 * Loads, unloads and reloads modules: Prosody's `core/modulemanager.lua`.
 *
 * A module is found by name on `plugin_paths`, then in the built-in
 * `modules/` directory, imported, and its default export is called with a
 * fresh {@link Module}. Modules declaring `meta.scope = "global"` load once
 * for the whole server; a host that enables one gets `addHost()` called with
 * a per-host instance when the module exports it.
 *
 * @example
 * ```ts
 * await server.modules.load("localhost", "ping");
 * await server.modules.reload("localhost", "ping");
 * await server.modules.unload("localhost", "ping");
 * ```
 * @module
 */
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Module, type ModuleContext, type ModuleDefinition } from "./moduleapi.ts";
import { locateModule } from "./modulelocator.ts";
import type { ResolvedConfig } from "./config.ts";
import type { EventBus } from "./events.ts";
import type { HostManager } from "./hostmanager.ts";

/** What the module manager works with: the configuration, the hosts, the server's events. */
export interface ModuleManagerDeps {
  config: ResolvedConfig;
  hosts: HostManager;
  events: EventBus;
  /** The context every Module is given (it includes this manager as its loader). */
  context(): ModuleContext;
}

const BUILTIN_DIR = fileURLToPath(new URL("../modules/", import.meta.url));

export class ModuleError extends Error {}

export class ModuleManager {
  /** Global module instances by name. */
  private globals = new Map<string, Module>();
  /** Loads in progress, so concurrent `depends` share one load. */
  private loading = new Map<string, Promise<Module>>();
  /** Who depends on whom: "host/name" → dependants. */
  private dependants = new Map<string, Set<Module>>();
  private generation = 0;

  constructor(private deps: ModuleManagerDeps) {}

  static get builtinDir(): string {
    return BUILTIN_DIR;
  }

  /** The loaded instance of `name` on `host` ("*" for global), if any. */
  get(host: string, name: string): Module | undefined {
    return host === "*" ? this.globals.get(name) : this.deps.hosts.get(host)?.modules.get(name);
  }

  isLoaded(host: string, name: string): boolean {
    return this.get(host, name) !== undefined;
  }

  /** Loads `name` on `host` (idempotent: an already loaded module is returned). */
  load(host: string, name: string): Promise<Module> {
    const existing = this.get(host, name);
    if (existing) return Promise.resolve(existing);
    const key = host + "/" + name;
    let p = this.loading.get(key);
    if (!p) {
      p = this.doLoad(host, name).finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  private async doLoad(
    host: string,
    name: string,
    state?: unknown,
    /** Code imported already (a reload): used instead of importing again. */
    imported?: { path: string; def: ModuleDefinition },
  ): Promise<Module> {
    const path = imported?.path ?? this.locate(name);
    const def = imported?.def ?? await this.importDefinition(path, false);
    if (def.meta?.scope === "global") {
      let global = this.globals.get(name);
      if (!global) global = await this.instantiate("*", name, path, def, state);
      if (host === "*" || !def.addHost) return global;
      const hostModule = new Module(name, host, this.deps.context());
      hostModule.definition = def;
      hostModule.path = path;
      hostModule.exports = global.exports;
      this.deps.hosts.get(host)!.modules.set(name, hostModule);
      await def.addHost(hostModule);
      return hostModule;
    }
    if (host === "*") throw new ModuleError(`module "${name}" is not a global module`);
    return await this.instantiate(host, name, path, def, state);
  }

  private async instantiate(
    host: string,
    name: string,
    path: string,
    def: ModuleDefinition,
    state: unknown,
  ): Promise<Module> {
    const module = new Module(name, host, this.deps.context());
    module.definition = def;
    module.path = path;
    if (host === "*") this.globals.set(name, module);
    else this.deps.hosts.get(host)!.modules.set(name, module);
    try {
      await def.default(module);
      if (state !== undefined) def.restore?.(state);
      if (def.ready) module.onReady(def.ready);
    } catch (e) {
      this.cleanup(module);
      if (host === "*") this.globals.delete(name);
      else this.deps.hosts.get(host)?.modules.delete(name);
      throw new ModuleError(
        `module "${name}" failed to load on ${host === "*" ? "the server" : host}: ${
          (e as Error).message
        }`,
        { cause: e },
      );
    }
    this.deps.events.emit("module-loaded", { module: name, host }, module.logError);
    module.log.debug("loaded");
    return module;
  }

  private locate(name: string): string {
    const pluginPaths = (this.deps.config.global("plugin_paths") as string[] | undefined) ?? [];
    const dirs = pluginPaths.map((p) => resolve(this.deps.config.configDir, p));
    const path = locateModule(name, dirs, BUILTIN_DIR);
    if (!path) throw new ModuleError(`module "${name}" not found (plugin_paths and modules/)`);
    return path;
  }

  private async importDefinition(path: string, fresh: boolean): Promise<ModuleDefinition> {
    // Deno cannot evict a module from its cache, so a reload imports a new URL.
    // (Files the module imports itself stay cached: only its own file is fresh.)
    const url = pathToFileURL(path);
    if (fresh) url.searchParams.set("reload", String(++this.generation));
    const def = await import(url.href) as ModuleDefinition;
    if (typeof def.default !== "function") {
      throw new ModuleError(`module file ${path} has no default export function`);
    }
    return def;
  }

  /** Records that `dependant` needs `dependency` (unloading the latter unloads the former). */
  recordDependency(dependant: Module, dependency: Module): void {
    const key = dependency.host + "/" + dependency.name;
    let set = this.dependants.get(key);
    if (!set) this.dependants.set(key, set = new Set());
    set.add(dependant);
  }

  /** Unloads `name` from `host`: every hook, timer and item it added goes. */
  async unload(host: string, name: string): Promise<void> {
    const module = this.get(host, name);
    if (!module) throw new ModuleError(`module "${name}" is not loaded on ${host}`);
    const key = host + "/" + name;
    for (const d of this.dependants.get(key) ?? []) {
      if (d.loaded) await this.unload(d.host, d.name);
    }
    this.dependants.delete(key);
    const isHostInstanceOfGlobal = host !== "*" && module.definition?.meta?.scope === "global";
    if (!isHostInstanceOfGlobal) {
      try {
        await module.definition?.unload?.();
      } catch (e) {
        module.log.warn("unload() failed: {error}", { error: e });
      }
    }
    this.cleanup(module);
    if (host === "*") this.globals.delete(name);
    else this.deps.hosts.get(host)?.modules.delete(name);
    this.deps.events.emit("module-unloaded", { module: name, host }, module.logError);
  }

  private cleanup(module: Module): void {
    for (const cancel of [...module.pendingIqs]) cancel();
    for (const { bus, name, fn } of module.hooks) bus.off(name, fn);
    module.hooks.length = 0;
    for (const t of module.timers) clearTimeout(t);
    module.timers.clear();
    for (const [kind, list] of module.items) {
      for (const item of [...list]) module.removeItem(kind, item);
    }
    module.items.clear();
    for (const fn of module.cleanups.splice(0)) {
      try {
        fn();
      } catch (e) {
        module.logError(e);
      }
    }
    module.loaded = false;
  }

  /** Reloads a module's code, passing `save()`'s state to the new instance's `restore()`. */
  async reload(host: string, name: string): Promise<Module> {
    const old = this.get(host, name);
    if (!old) throw new ModuleError(`module "${name}" is not loaded on ${host}`);
    // Compile the new code first: a broken file leaves the old module running.
    const path = this.locate(name);
    const def = await this.importDefinition(path, true);
    const state = old.definition?.save?.();
    const dependants = [...this.dependants.get(host + "/" + name) ?? []];
    await this.unload(host, name);
    const fresh = await this.doLoad(host, name, state ?? undefined, { path, def });
    for (const d of dependants) await this.load(d.host, d.name);
    this.deps.events.emit("module-reloaded", { module: name, host }, fresh.logError);
    return fresh;
  }

  /** Unloads every module of a host (at shutdown or host removal). */
  async unloadAll(host: string): Promise<void> {
    const names = [...this.deps.hosts.get(host)?.modules.keys() ?? []].reverse();
    for (const name of names) {
      if (this.isLoaded(host, name)) await this.unload(host, name);
    }
  }

  async unloadGlobals(): Promise<void> {
    for (const name of [...this.globals.keys()].reverse()) {
      if (this.globals.has(name)) await this.unload("*", name);
    }
  }
}
