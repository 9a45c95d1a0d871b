/**
 * The storage manager: picks the driver for each store from the `storage`
 * option (one driver name for every store, or a map from store name to
 * driver, with `default_storage` for the rest), as Prosody's
 * `storagemanager` does.
 *
 * Drivers: `sqlite` (the default; Prosody's name `internal` is accepted as
 * an alias, since SQLite is Cadence's embedded store) and `memory`.
 *
 * @example
 * ```ts
 * const storage = new StorageManager({ dataPath: "./data" });
 * const accounts = storage.open("localhost", "accounts", "keyval");
 * ```
 * @module
 */
import { MemoryDriver } from "./memory.ts";
import { SqliteDriver } from "./sqlite.ts";
import type { ArchiveStore, KeyValStore, MapStore, StorageDriver, StoreType } from "./types.ts";

export const DRIVERS = ["sqlite", "internal", "memory"] as const;

export interface StorageOptions {
  dataPath: string;
  /** Prosody's `storage`: a driver name, or store name → driver name. */
  storage?: string | Record<string, string>;
  /** Prosody's `default_storage`: the driver for stores the map does not name. */
  defaultStorage?: string;
  /** Most items one user's archive may hold. */
  archiveItemLimit?: number;
}

export class StorageManager {
  private drivers = new Map<string, StorageDriver>();

  constructor(private opts: StorageOptions) {
    for (const name of this.configuredDrivers()) this.driver(name);
  }

  private configuredDrivers(): string[] {
    const { storage, defaultStorage } = this.opts;
    const names = [defaultStorage ?? "sqlite"];
    if (typeof storage === "string") names.push(storage);
    else if (storage) names.push(...Object.values(storage));
    for (const n of names) {
      if (!(DRIVERS as readonly string[]).includes(n)) {
        throw new Error(
          `storage option: unknown driver "${n}"; expected one of ${DRIVERS.join(", ")}`,
        );
      }
    }
    return names;
  }

  private driver(name: string): StorageDriver {
    const key = name === "internal" ? "sqlite" : name;
    let d = this.drivers.get(key);
    if (!d) {
      d = key === "memory"
        ? new MemoryDriver(this.opts.archiveItemLimit)
        : new SqliteDriver(this.opts.dataPath, this.opts.archiveItemLimit);
      this.drivers.set(key, d);
    }
    return d;
  }

  /** The driver name a store uses. */
  driverFor(store: string): string {
    const { storage, defaultStorage } = this.opts;
    if (typeof storage === "string") return storage;
    return storage?.[store] ?? defaultStorage ?? "sqlite";
  }

  open<T = unknown>(host: string, store: string, type?: "keyval"): KeyValStore<T>;
  open<T = unknown>(host: string, store: string, type: "map"): MapStore<T>;
  open(host: string, store: string, type: "archive"): ArchiveStore;
  open(host: string, store: string, type: StoreType = "keyval") {
    return this.driver(this.driverFor(store)).open(host, store, type);
  }

  /** Deletes everything a user has stored, in every driver. */
  async purge(host: string, user: string): Promise<void> {
    for (const d of this.drivers.values()) await d.purge(host, user);
  }

  close(): void {
    for (const d of this.drivers.values()) d.close();
    this.drivers.clear();
  }
}
