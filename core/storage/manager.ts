/**
 * The storage manager, as Prosody's `storagemanager`: picks each store's
 * driver from the configuration and opens stores through it. A store's driver
 * is `storage[store]` when `storage` is a map, else `storage` when it is a
 * name, else `default_storage`, else `sqlite`.
 *
 * Driver names: `sqlite` (one file in the data directory), `memory` (tests),
 * and `internal`, Prosody's name for its built-in file store, accepted as an
 * alias of `sqlite` so Prosody configurations keep working.
 *
 * @example
 * ```ts
 * const storage = new StorageManager({ dataPath: "./data", storage: { archive: "memory" } });
 * const accounts = storage.open<{ password: string }>("example.com", "accounts");
 * await storage.purge("example.com", "juliet");
 * storage.close();
 * ```
 * @module
 */
import { MemoryDriver } from "./memory.ts";
import { SqliteDriver } from "./sqlite.ts";
import type { ArchiveStore, KeyValStore, MapStore, StorageDriver, StoreType } from "./types.ts";
import type { MetricFamily } from "../metrics.ts";
import { isPromise } from "../events.ts";

/** The driver names the `storage` and `default_storage` options accept. */
export const DRIVER_NAMES = ["sqlite", "internal", "memory"] as const;

/**
 * What the manager needs from the configuration.
 *
 * @example
 * ```ts
 * const opts: StorageOptions = { dataPath: "./data", storage: "sqlite", archiveItemLimit: 10000 };
 * ```
 */
export interface StorageOptions {
  /** Prosody's `data_path`: where `sqlite` keeps `cadence.sqlite`. */
  dataPath: string;
  /** Prosody's `storage`: one driver name for every store, or store name → driver name. */
  storage?: string | Record<string, string>;
  /** Prosody's `default_storage`: the driver for stores `storage` does not name ("sqlite"). */
  defaultStorage?: string;
  /** Prosody's `storage_archive_item_limit`: most items per user's archive (default: no limit). */
  archiveItemLimit?: number;
  /**
   * A histogram with labels (driver, store_type, op): each store operation's
   * duration in seconds is sampled into it.
   */
  timing?: MetricFamily;
}

/**
 * Opens stores with the configured drivers. Every configured driver is
 * started (and its database opened) by the constructor, which throws on an
 * unknown driver name.
 *
 * @example
 * ```ts
 * const storage = new StorageManager({ dataPath: "./data" });
 * const roster = storage.open("example.com", "roster", "map");
 * const mam = storage.open("example.com", "archive", "archive");
 * ```
 */
export class StorageManager {
  private drivers = new Map<string, StorageDriver>();
  private storage: string | Record<string, string> | undefined;
  private defaultStorage: string;
  private timing: MetricFamily | undefined;

  constructor(opts: StorageOptions) {
    this.storage = opts.storage;
    this.timing = opts.timing;
    this.defaultStorage = checkName("default_storage", opts.defaultStorage ?? "sqlite");
    const names = new Set<string>();
    if (typeof opts.storage === "string") {
      names.add(checkName("storage", opts.storage));
    } else if (opts.storage !== undefined) {
      if (typeof opts.storage !== "object" || opts.storage === null) {
        throw new Error(`option storage: expected a driver name or a map of store names to names`);
      }
      for (const [store, name] of Object.entries(opts.storage)) {
        names.add(checkName(`storage.${store}`, name));
      }
      names.add(this.defaultStorage);
    } else {
      names.add(this.defaultStorage);
    }
    const limit = opts.archiveItemLimit ?? Infinity;
    if (typeof limit !== "number" || !(limit >= 0)) {
      throw new Error(`option storage_archive_item_limit: expected a number ≥ 0, got ${limit}`);
    }
    try {
      for (const name of names) this.drivers.set(name, startDriver(name, opts.dataPath, limit));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** The driver name a store uses (after resolving `internal` to `sqlite`). */
  driverFor(store: string): string {
    const s = this.storage;
    const name = typeof s === "string" ? s : s?.[store] ?? this.defaultStorage;
    return canonical(name);
  }

  /**
   * A store of this host; synchronous and cheap (no I/O).
   *
   * @example
   * ```ts
   * const vcard = storage.open<string>("example.com", "vcard"); // keyval
   * ```
   */
  open<T = unknown>(host: string, store: string, type?: "keyval"): KeyValStore<T>;
  open<T = unknown>(host: string, store: string, type: "map"): MapStore<T>;
  open(host: string, store: string, type: "archive"): ArchiveStore;
  open(host: string, store: string, type: StoreType): KeyValStore | MapStore | ArchiveStore;
  open(host: string, store: string, type: StoreType = "keyval") {
    const name = this.driverFor(store);
    const driver = this.drivers.get(name);
    if (!driver) throw new Error("storage is closed");
    const opened = driver.open(host, store, type);
    return this.timing ? timed(opened, this.timing, name, type) : opened;
  }

  /**
   * Deletes everything a user has stored on a host, in every driver.
   *
   * @example
   * ```ts
   * await storage.purge("example.com", "juliet");
   * ```
   */
  async purge(host: string, user: string): Promise<void> {
    for (const driver of this.drivers.values()) await driver.purge(host, user);
  }

  /** Closes every driver (the database file among them). */
  close(): void {
    for (const driver of this.drivers.values()) driver.close();
    this.drivers.clear();
  }
}

/**
 * The store, with each method call's duration (until its promise settles)
 * sampled into `timing{driver, store_type, op}`; one metric per method, made
 * on its first call.
 */
function timed<T extends object>(
  store: T,
  timing: MetricFamily,
  driver: string,
  type: StoreType,
): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function" || typeof prop !== "string") return v;
      let w = wrapped.get(prop);
      if (!w) {
        const metric = timing.with(driver, type, prop);
        w = (...args: unknown[]) => {
          const t0 = performance.now();
          const r = v.apply(target, args);
          const done = () => metric.sample((performance.now() - t0) / 1000);
          if (isPromise(r)) return Promise.resolve(r).finally(done);
          done();
          return r;
        };
        wrapped.set(prop, w);
      }
      return w;
    },
  });
}

/** Prosody's `internal` names Cadence's built-in persistent store, which is SQLite. */
function canonical(name: string): string {
  return name === "internal" ? "sqlite" : name;
}

/** The canonical driver name, or an error naming the option and the allowed values. */
function checkName(option: string, name: unknown): string {
  if (typeof name !== "string" || !(DRIVER_NAMES as readonly string[]).includes(name)) {
    throw new Error(
      `option ${option}: unknown storage driver ${JSON.stringify(name) ?? name}; ` +
        `use one of ${DRIVER_NAMES.map((n) => `"${n}"`).join(", ")}`,
    );
  }
  return canonical(name);
}

function startDriver(name: string, dataPath: string, archiveItemLimit: number): StorageDriver {
  if (name === "memory") return new MemoryDriver({ archiveItemLimit });
  return new SqliteDriver({ dataPath, archiveItemLimit });
}
