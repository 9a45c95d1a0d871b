/**
 * The shapes of stored data, as in Prosody's storage API: keyval (one value
 * per user), map (one value per user and key) and archive (a stanza log per
 * user, in the order of storage). Every method is async; failures throw a
 * {@link StorageError}; "not found" is `null`. `user` may be `null`, meaning
 * host-level data (never listed by `users()`).
 *
 * @example
 * ```ts
 * const accounts: KeyValStore<{ password: string }> = module.openStore("accounts");
 * await accounts.set("juliet", { password: "s3cret" });
 * await accounts.get("juliet"); // { password: "s3cret" }
 * ```
 * @module
 */
import type { Stanza } from "../xml/stanza.ts";

/**
 * Marks a key for deletion in {@link MapStore.setKeys} (Prosody's `store.remove`).
 *
 * @example
 * ```ts
 * await roster.setKeys("juliet", { "romeo@example.com": REMOVE });
 * ```
 */
export const REMOVE: unique symbol = Symbol("REMOVE");

/**
 * A storage failure. `condition` is a short code: `item-not-found` (an
 * archive paging anchor or item that does not exist), `quota-limit` (the
 * archive is full), `internal-server-error` (anything else; see `cause`).
 *
 * @example
 * ```ts
 * try {
 *   await archive.append("juliet", null, stanza);
 * } catch (e) {
 *   if (e instanceof StorageError && e.condition === "quota-limit") {
 *     // tell the client its archive is full
 *   }
 * }
 * ```
 */
export class StorageError extends Error {
  readonly condition: string;

  constructor(condition: string, message?: string, options?: ErrorOptions) {
    super(message ?? condition, options);
    this.name = "StorageError";
    this.condition = condition;
  }
}

/** The kinds of store a driver opens. */
export type StoreType = "keyval" | "map" | "archive";

/**
 * One value per user (Prosody's default store type).
 *
 * @example
 * ```ts
 * const vcards = storage.open<string>("example.com", "vcard", "keyval");
 * await vcards.set("juliet", "<vCard/>");
 * for await (const user of vcards.users()) console.log(user);
 * ```
 */
export interface KeyValStore<T = unknown> {
  get(user: string | null): Promise<T | null>;
  /** Stores a copy of `value` (JSON); `null` (or `undefined`) deletes. */
  set(user: string | null, value: T | null): Promise<void>;
  /** Users that have a value in this store (host-level data excluded). */
  users(): AsyncIterable<string>;
}

/**
 * One value per user and key.
 *
 * @example
 * ```ts
 * const roster = storage.open<RosterItem>("example.com", "roster", "map");
 * await roster.set("juliet", "romeo@example.com", { subscription: "both" });
 * await roster.setKeys("juliet", { "nurse@example.com": item, "romeo@example.com": REMOVE });
 * ```
 */
export interface MapStore<T = unknown> {
  get(user: string | null, key: string): Promise<T | null>;
  /** `null` (or `undefined`) deletes. */
  set(user: string | null, key: string, value: T | null): Promise<void>;
  /** Several keys at once, all or nothing; {@link REMOVE} deletes a key. */
  setKeys(user: string | null, values: Record<string, T | typeof REMOVE>): Promise<void>;
  /** The value of `key` for every user that has one (host-level data excluded). */
  getAll(key: string): Promise<Map<string, T>>;
  /** Deletes `key` for every user, and at host level. */
  deleteAll(key: string): Promise<void>;
}

/**
 * One archived stanza.
 *
 * @example
 * ```ts
 * const item: ArchiveItem = { id, stanza, when: Date.now() / 1000, with: "romeo@example.com" };
 * ```
 */
export interface ArchiveItem {
  id: string;
  stanza: Stanza;
  /** Seconds since the epoch, with sub-second precision. */
  when: number;
  /** What the item was filed under (MAM: the peer's bare JID; offline: ""). */
  with: string;
}

/**
 * Which items an archive call is about. Without a query: all of them.
 *
 * @example
 * ```ts
 * // The 20 newest messages with Romeo, before the page whose first id is `oldest`:
 * await mam.find("juliet", { with: "romeo@example.com", before: oldest, limit: 20, reverse: true });
 * ```
 */
export interface ArchiveQuery {
  /** Inclusive lower bound on `when`. */
  start?: number;
  /** Inclusive upper bound on `when`. */
  end?: number;
  /** Exact match on `with`. */
  with?: string;
  /** A single id. */
  key?: string;
  /** A set of ids. */
  ids?: string[];
  /** Only items stored before this id (exclusive); throws `item-not-found` when it is unknown. */
  before?: string;
  /** Only items stored after this id (exclusive); throws `item-not-found` when it is unknown. */
  after?: string;
  /** At most this many items (after `reverse`: the newest ones). */
  limit?: number;
  /** Newest first. */
  reverse?: boolean;
  /** With `delete`: keep the N newest matching items (the N oldest with `reverse`). */
  truncate?: number;
}

/**
 * What an archive supports (Prosody's `caps`), for callers to check first.
 *
 * @example
 * ```ts
 * if (archive.caps.quota !== Infinity) log.info("archives hold at most %d items", archive.caps.quota);
 * ```
 */
export interface ArchiveCaps {
  /** `count()` is cheap enough for RSM `<count/>`. */
  readonly total: boolean;
  /** Most items one user's archive may hold; `Infinity` when unlimited. */
  readonly quota: number;
  /** `delete` understands `truncate`. */
  readonly truncate: boolean;
  /** `before` and `after` may be used together. */
  readonly fullIdRange: boolean;
  /** Queries understand `ids`. */
  readonly ids: boolean;
  /** `delete` across every user at once (not supported yet). */
  readonly wildcardDelete: boolean;
}

/**
 * A stanza log per user. Order is the order of storage, never of timestamps.
 *
 * @example
 * ```ts
 * const mam = storage.open("example.com", "archive", "archive");
 * const id = await mam.append("juliet", null, msg, Date.now() / 1000, "romeo@example.com");
 * const page = await mam.find("juliet", { after: id, limit: 10 });
 * ```
 */
export interface ArchiveStore {
  /**
   * Stores `stanza` last and returns its id: a new sortable id when `key` is
   * null, else `key` (an existing item with that id is replaced and moves to
   * the end). `when` defaults to now, `withJid` to "". Throws `quota-limit`
   * when the user's archive is full.
   */
  append(
    user: string | null,
    key: string | null,
    stanza: Stanza,
    when?: number,
    withJid?: string,
  ): Promise<string>;
  /** Matching items in storage order (newest first with `reverse`). */
  find(user: string | null, query?: ArchiveQuery): Promise<ArchiveItem[]>;
  /** How many items match the filters, ignoring paging (`before`, `after`, `limit`), like Prosody's `total`. */
  count(user: string | null, query?: ArchiveQuery): Promise<number>;
  get(user: string | null, key: string): Promise<ArchiveItem | null>;
  /** Replaces an item in place (`when` and `with` kept unless given); throws `item-not-found`. */
  set(
    user: string | null,
    key: string,
    stanza: Stanza,
    when?: number,
    withJid?: string,
  ): Promise<void>;
  /** Deletes the matching items (all without a query); returns how many. */
  delete(user: string | null, query?: ArchiveQuery): Promise<number>;
  /**
   * Deletes, across every user of the archive, up to `limit` of the items
   * stored with a `when` before `before`; returns how many (fewer than
   * `limit` only when none are left). Which users' go first is the driver's
   * choice (SQLite goes user by user); its cost follows `limit`, not the
   * archive's size, so expiry runs in batches.
   */
  expire(before: number, limit: number): Promise<number>;
  /** Users that have items in this archive (host-level data excluded). */
  users(): AsyncIterable<string>;
  readonly caps: ArchiveCaps;
}

/**
 * The capabilities both built-in drivers have, with their item limit.
 *
 * @example
 * ```ts
 * archiveCaps(Infinity).quota; // Infinity
 * ```
 */
export function archiveCaps(quota: number): ArchiveCaps {
  return {
    total: true,
    quota,
    truncate: true,
    fullIdRange: true,
    ids: true,
    wildcardDelete: false,
  };
}

/**
 * A storage backend, chosen with Prosody's `storage` option.
 *
 * @example
 * ```ts
 * const driver: StorageDriver = new MemoryDriver();
 * const roster = driver.open("example.com", "roster", "map");
 * await driver.purge("example.com", "juliet");
 * ```
 */
export interface StorageDriver {
  readonly name: string;
  /** Synchronous and cheap: no I/O. */
  open<T = unknown>(host: string, store: string, type: "keyval"): KeyValStore<T>;
  open<T = unknown>(host: string, store: string, type: "map"): MapStore<T>;
  open(host: string, store: string, type: "archive"): ArchiveStore;
  open(host: string, store: string, type: StoreType): KeyValStore | MapStore | ArchiveStore;
  /** Deletes all of a user's data on a host, in every store. */
  purge(host: string, user: string): Promise<void>;
  close(): void;
}

/**
 * A new id that sorts by creation time (`ms`, now by default): a UUIDv7, as
 * Prosody's drivers use. Archive keys made this way keep the key index in
 * time order, so expiring the oldest items touches few of its pages.
 *
 * @example
 * ```ts
 * newId(); // "0190b2c4-5e7a-7c3d-9f21-8a6b4c2d1e0f"
 * ```
 */
export function newId(ms: number = Date.now()): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = 0x70 | (b[6] & 0x0f); // version 7
  b[8] = 0x80 | (b[8] & 0x3f); // RFC 9562 variant
  let h = "";
  for (const x of b) h += x.toString(16).padStart(2, "0");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Runs a synchronous storage operation as a store method: its result as a
 * resolved promise, anything it throws as a rejected {@link StorageError}.
 *
 * @example
 * ```ts
 * get(user) { return settle(() => this.read(user)); }
 * ```
 */
export function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(
      e instanceof StorageError
        ? e
        : new StorageError("internal-server-error", (e as Error)?.message ?? String(e), {
          cause: e,
        }),
    );
  }
}

/**
 * Serialises a stored value (JSON text); throws for what JSON cannot hold.
 *
 * @example
 * ```ts
 * encodeValue({ a: 1 }); // '{"a":1}'
 * ```
 */
export function encodeValue(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new StorageError("internal-server-error", "value is not storable");
  return json;
}
