/**
 * The shapes of stored data, as Prosody's storage API: keyval (one value per
 * user), map (one value per user and key) and archive (a time-ordered stanza
 * log per user). Every method is async; failures throw {@link StorageError};
 * "not found" is `null`. `user` may be `null` for host-level data.
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

/** Marks a key for deletion in {@link MapStore.setKeys}. */
export const REMOVE: unique symbol = Symbol("REMOVE");

export class StorageError extends Error {
  constructor(readonly condition: string, message?: string) {
    super(message ?? condition);
    this.name = "StorageError";
  }
}

export type StoreType = "keyval" | "map" | "archive";

export interface KeyValStore<T = unknown> {
  get(user: string | null): Promise<T | null>;
  /** `null` deletes. */
  set(user: string | null, value: T | null): Promise<void>;
  /** Users that have a value in this store. */
  users(): AsyncIterable<string>;
}

export interface MapStore<T = unknown> {
  get(user: string | null, key: string): Promise<T | null>;
  /** `null` deletes. */
  set(user: string | null, key: string, value: T | null): Promise<void>;
  /** Several keys at once, atomically; {@link REMOVE} deletes a key. */
  setKeys(user: string | null, values: Record<string, T | typeof REMOVE>): Promise<void>;
  /** Every key of a user. */
  getAll(user: string | null): Promise<Map<string, T>>;
  /** The value of `key` for every user that has one. */
  getAllUsers(key: string): Promise<Map<string, T>>;
  /** Deletes `key` for every user. */
  deleteAll(key: string): Promise<void>;
}

export interface ArchiveItem {
  id: string;
  stanza: Stanza;
  /** Seconds since the epoch, with sub-second precision. */
  when: number;
  with: string;
}

export interface ArchiveQuery {
  /** Inclusive bounds on `when`. */
  start?: number;
  end?: number;
  with?: string;
  key?: string;
  ids?: string[];
  /** Paging anchors (ids); an unknown anchor throws `item-not-found`. */
  before?: string;
  after?: string;
  limit?: number;
  /** Newest first. */
  reverse?: boolean;
  /** With `delete`: keep only this many newest items (oldest with `reverse`). */
  truncate?: number;
}

export interface ArchiveStore {
  /** Appends (or replaces, when `key` exists); returns the id. Throws `quota-limit` when full. */
  append(
    user: string | null,
    key: string | null,
    stanza: Stanza,
    when?: number,
    withJid?: string,
  ): Promise<string>;
  /** Items in storage order (or reversed), filtered and paged by the query. */
  find(user: string | null, query?: ArchiveQuery): Promise<ArchiveItem[]>;
  count(user: string | null, query?: ArchiveQuery): Promise<number>;
  get(user: string | null, key: string): Promise<ArchiveItem | null>;
  /** Deletes what the query matches (everything without one); returns how many. */
  delete(user: string | null, query?: ArchiveQuery): Promise<number>;
  users(): AsyncIterable<string>;
}

/** A storage backend (`storage` option): opens stores and purges users. */
export interface StorageDriver {
  readonly name: string;
  open(host: string, store: string, type: "keyval"): KeyValStore;
  open(host: string, store: string, type: "map"): MapStore;
  open(host: string, store: string, type: "archive"): ArchiveStore;
  open(host: string, store: string, type: StoreType): KeyValStore | MapStore | ArchiveStore;
  /** Deletes every piece of a user's data on a host. */
  purge(host: string, user: string): Promise<void>;
  close(): void;
}

/** A sortable unique id (time-ordered, like UUIDv7). */
export function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const ms = Date.now();
  for (let i = 5; i >= 0; i--) bytes[5 - i] = Math.floor(ms / 2 ** (8 * i)) & 0xff;
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}
