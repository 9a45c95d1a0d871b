/**
 * The `memory` storage driver: data lives in this driver object (so in this
 * process) and is gone when it is dropped. For tests. It stores values and
 * stanzas in the same encoded form as `sqlite`, so both behave alike: what
 * you get back is always a fresh copy.
 *
 * @example
 * ```ts
 * const driver = new MemoryDriver();
 * const accounts = driver.open("example.com", "accounts", "keyval");
 * await accounts.set("juliet", { password: "s3cret" });
 * ```
 * @module
 */
import type { Stanza } from "../xml/stanza.ts";
import { decodeStanza, encodeStanza } from "./stanza_codec.ts";
import {
  type ArchiveCaps,
  archiveCaps,
  type ArchiveItem,
  type ArchiveQuery,
  type ArchiveStore,
  encodeValue,
  type KeyValStore,
  type MapStore,
  newId,
  REMOVE,
  settle,
  type StorageDriver,
  StorageError,
  type StoreType,
} from "./types.ts";

/** Host-level data (`user` null) is kept under the empty name, as in `sqlite`. */
const u = (user: string | null): string => user ?? "";

/** A table per host and store: user → data. */
type Tables<T> = Map<string, Map<string, T>>;

interface Row {
  id: string;
  when: number;
  with: string;
  stanza: string;
}

/**
 * The in-memory driver.
 *
 * @example
 * ```ts
 * const driver = new MemoryDriver({ archiveItemLimit: 100 });
 * const mam = driver.open("example.com", "archive", "archive");
 * ```
 */
export class MemoryDriver implements StorageDriver {
  readonly name = "memory";
  readonly caps: ArchiveCaps;
  private keyval: Tables<string> = new Map();
  private maps: Tables<Map<string, string>> = new Map();
  private archives: Tables<Row[]> = new Map();

  constructor(opts: { archiveItemLimit?: number } = {}) {
    this.caps = archiveCaps(opts.archiveItemLimit ?? Infinity);
  }

  open<T = unknown>(host: string, store: string, type: "keyval"): KeyValStore<T>;
  open<T = unknown>(host: string, store: string, type: "map"): MapStore<T>;
  open(host: string, store: string, type: "archive"): ArchiveStore;
  open(host: string, store: string, type: StoreType): KeyValStore | MapStore | ArchiveStore;
  open(host: string, store: string, type: StoreType): KeyValStore | MapStore | ArchiveStore {
    if (type === "keyval") return new MemoryKeyVal(table(this.keyval, host, store));
    if (type === "map") return new MemoryMap(table(this.maps, host, store));
    return new MemoryArchive(table(this.archives, host, store), this.caps);
  }

  purge(host: string, user: string): Promise<void> {
    const prefix = host + "\0";
    for (const tables of [this.keyval, this.maps, this.archives] as Tables<unknown>[]) {
      for (const [name, t] of tables) if (name.startsWith(prefix)) t.delete(user);
    }
    return Promise.resolve();
  }

  close(): void {}
}

function table<T>(tables: Tables<T>, host: string, store: string): Map<string, T> {
  const name = host + "\0" + store;
  let t = tables.get(name);
  if (!t) tables.set(name, t = new Map());
  return t;
}

class MemoryKeyVal<T> implements KeyValStore<T> {
  constructor(private t: Map<string, string>) {}

  get(user: string | null): Promise<T | null> {
    return settle(() => {
      const json = this.t.get(u(user));
      return json === undefined ? null : JSON.parse(json);
    });
  }

  set(user: string | null, value: T | null): Promise<void> {
    return settle(() => {
      if (value == null) this.t.delete(u(user));
      else this.t.set(u(user), encodeValue(value));
    });
  }

  async *users(): AsyncIterable<string> {
    for (const user of [...this.t.keys()]) if (user !== "") yield user;
  }
}

class MemoryMap<T> implements MapStore<T> {
  constructor(private t: Map<string, Map<string, string>>) {}

  get(user: string | null, key: string): Promise<T | null> {
    return settle(() => {
      const json = this.t.get(u(user))?.get(key);
      return json === undefined ? null : JSON.parse(json);
    });
  }

  set(user: string | null, key: string, value: T | null): Promise<void> {
    return this.setKeys(user, { [key]: value ?? REMOVE } as Record<string, T | typeof REMOVE>);
  }

  setKeys(user: string | null, values: Record<string, T | typeof REMOVE>): Promise<void> {
    return settle(() => {
      // Encode everything first, so a value that cannot be stored changes nothing.
      const changes = Object.entries(values).map(([key, v]) =>
        [key, v === REMOVE || v == null ? null : encodeValue(v)] as const
      );
      let m = this.t.get(u(user));
      if (!m) this.t.set(u(user), m = new Map());
      for (const [key, json] of changes) {
        if (json === null) m.delete(key);
        else m.set(key, json);
      }
      if (m.size === 0) this.t.delete(u(user));
    });
  }

  getAll(key: string): Promise<Map<string, T>> {
    return settle(() => {
      const out = new Map<string, T>();
      for (const [user, m] of this.t) {
        const json = m.get(key);
        if (user !== "" && json !== undefined) out.set(user, JSON.parse(json));
      }
      return out;
    });
  }

  deleteAll(key: string): Promise<void> {
    return settle(() => {
      for (const m of this.t.values()) m.delete(key);
    });
  }
}

class MemoryArchive implements ArchiveStore {
  constructor(private t: Map<string, Row[]>, readonly caps: ArchiveCaps) {}

  append(
    user: string | null,
    key: string | null,
    stanza: Stanza,
    when = Date.now() / 1000,
    withJid = "",
  ): Promise<string> {
    return settle(() => {
      const rows = this.t.get(u(user)) ?? [];
      const old = key === null ? -1 : rows.findIndex((r) => r.id === key);
      if (old === -1 && rows.length >= this.caps.quota) {
        throw new StorageError("quota-limit", "the archive is full");
      }
      const row = { id: key ?? newId(), when, with: withJid, stanza: encodeStanza(stanza) };
      if (old !== -1) rows.splice(old, 1);
      rows.push(row);
      this.t.set(u(user), rows);
      return row.id;
    });
  }

  find(user: string | null, query: ArchiveQuery = {}): Promise<ArchiveItem[]> {
    return settle(() => {
      let rows = page(this.t.get(u(user)) ?? [], query);
      if (query.reverse) rows = rows.reverse();
      if (query.limit !== undefined) rows = rows.slice(0, Math.max(0, Math.floor(query.limit)));
      return rows.map(toItem);
    });
  }

  count(user: string | null, query: ArchiveQuery = {}): Promise<number> {
    return settle(() => (this.t.get(u(user)) ?? []).filter(filter(query)).length);
  }

  get(user: string | null, key: string): Promise<ArchiveItem | null> {
    return settle(() => {
      const row = this.t.get(u(user))?.find((r) => r.id === key);
      return row ? toItem(row) : null;
    });
  }

  set(
    user: string | null,
    key: string,
    stanza: Stanza,
    when?: number,
    withJid?: string,
  ): Promise<void> {
    return settle(() => {
      const row = this.t.get(u(user))?.find((r) => r.id === key);
      if (!row) throw new StorageError("item-not-found", `no archive item ${key}`);
      row.stanza = encodeStanza(stanza);
      if (when !== undefined) row.when = when;
      if (withJid !== undefined) row.with = withJid;
    });
  }

  delete(user: string | null, query: ArchiveQuery = {}): Promise<number> {
    return settle(() => {
      const rows = this.t.get(u(user)) ?? [];
      let doomed = page(rows, query);
      if (query.truncate !== undefined) {
        const keep = Math.max(0, Math.floor(query.truncate));
        const cut = Math.max(0, doomed.length - keep);
        doomed = query.reverse ? doomed.slice(keep) : doomed.slice(0, cut);
      }
      const gone = new Set(doomed);
      const left = rows.filter((r) => !gone.has(r));
      if (left.length) this.t.set(u(user), left);
      else this.t.delete(u(user));
      return doomed.length;
    });
  }

  expire(before: number, limit: number): Promise<number> {
    return settle(() => {
      const old: Row[] = [];
      for (const rows of this.t.values()) for (const r of rows) if (r.when < before) old.push(r);
      old.sort((a, b) => a.when - b.when);
      const gone = new Set(old.slice(0, Math.max(0, Math.floor(limit))));
      for (const [user, rows] of [...this.t]) {
        const left = rows.filter((r) => !gone.has(r));
        if (left.length) this.t.set(user, left);
        else this.t.delete(user);
      }
      return gone.size;
    });
  }

  async *users(): AsyncIterable<string> {
    for (const user of [...this.t.keys()]) if (user !== "") yield user;
  }
}

/** The rows a query's filters and id range select, in storage order. */
function page(rows: Row[], q: ArchiveQuery): Row[] {
  let from = 0;
  let to = rows.length;
  if (q.after !== undefined) from = anchor(rows, q.after) + 1;
  if (q.before !== undefined) to = anchor(rows, q.before);
  return rows.slice(from, to).filter(filter(q));
}

function anchor(rows: Row[], id: string): number {
  const i = rows.findIndex((r) => r.id === id);
  if (i === -1) throw new StorageError("item-not-found", `no archive item ${id}`);
  return i;
}

function filter(q: ArchiveQuery): (r: Row) => boolean {
  const ids = q.ids && new Set(q.ids);
  return (r) =>
    (q.start === undefined || r.when >= q.start) &&
    (q.end === undefined || r.when <= q.end) &&
    (q.with === undefined || r.with === q.with) &&
    (q.key === undefined || r.id === q.key) &&
    (ids === undefined || ids.has(r.id));
}

function toItem(r: Row): ArchiveItem {
  return { id: r.id, stanza: decodeStanza(r.stanza), when: r.when, with: r.with };
}
