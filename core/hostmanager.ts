/**
 * The hosts this server serves: each VirtualHost and Component has its own
 * event bus, modules and (for VirtualHosts) online users, as Prosody's
 * `hosts[name]` table.
 *
 * @example
 * ```ts
 * const host = hosts.get("localhost");
 * host?.events.fire("host-disco-items", event);
 * ```
 * @module
 */
import { EventBus } from "./events.ts";
import type { UserManager } from "./usermanager.ts";
import type { Module } from "./moduleapi.ts";

export interface Host {
  readonly name: string;
  readonly type: "local" | "component";
  readonly events: EventBus;
  /** Loaded modules by name (their per-host API objects). */
  readonly modules: Map<string, Module>;
  /** The account store and auth provider (VirtualHosts only). */
  users: UserManager | undefined;
}

export class HostManager {
  private hosts = new Map<string, Host>();

  get(name: string): Host | undefined {
    return this.hosts.get(name);
  }

  has(name: string): boolean {
    return this.hosts.has(name);
  }

  names(): IterableIterator<string> {
    return this.hosts.keys();
  }

  all(): IterableIterator<Host> {
    return this.hosts.values();
  }

  /** Creates the host record; modules are loaded by the module manager afterwards. */
  add(name: string, type: "local" | "component"): Host {
    const host: Host = {
      name,
      type,
      events: new EventBus(),
      modules: new Map(),
      users: undefined,
    };
    this.hosts.set(name, host);
    return host;
  }

  remove(name: string): void {
    this.hosts.delete(name);
  }

  /** A host's event bus, if the server has that host. */
  events(name: string): EventBus | undefined {
    return this.hosts.get(name)?.events;
  }
}
