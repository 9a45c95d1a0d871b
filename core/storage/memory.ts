/**
 * The `memory` storage driver: everything in process memory, gone at exit.
 * For tests, and for data that need not survive a restart.
 *
 * @example
 * ```ts
 * const driver = new MemoryDriver();
 * const store = driver.open("localhost", "accounts", "keyval");
 * await store.set("juliet", { password: "x" });
 * ```
 * @module
 */
import {
  type ArchiveItem,
  type ArchiveQuery,
  type ArchiveStore,
  type KeyValStore,
  type MapStore,
  newId,
  REMOVE,
  type StorageDriver,
  StorageError,
  type StoreType,
} from "./types.ts";
import type { Stanza } from "../xml/stanza.ts";

const HOST_LEVEL = "\u0000host";
const u = (user: string | null) => user ?? HOST_LEVEL;

interface Row extends ArchiveItem {
  seq: number;
}

/** Filters and pages archive rows held in storage order (shared by tests of both drivers). */
export function queryRows(rows: Row[], q: ArchiveQuery = {}): Row[] {
  let lo = -Infinity;
  let hi = Infinity;
  if (q.after !== undefined) {
    const anchor = rows.find((r) => r.id === q.after);
    if (!anchor) throw new StorageError("item-not-found", `no archive item ${q.after}`);
    lo = anchor.seq;
  }
  if (q.before !== undefined) {
    const anchor = rows.find((r) => r.id === q.before);
    if (!anchor) throw new StorageError("item-not-found", `no archive item ${q.before}`);
    hi = anchor.seq;
  }
  const ids = q.ids ? new Set(q.ids) : undefined;
  let out = rows.filter((r) =>
    r.seq > lo && r.seq < hi &&
    (q.start === undefined || r.when >= q.start) &&
    (q.end === undefined || r.when <= q.end) &&
    (q.with === undefined || r.with === q.with) &&
    (q.key === undefined || r.id === q.key) &&
    (ids === undefined || ids.has(r.id))
  );
  if (q.reverse) out = out.reverse();
  if (q.limit !== undefined) out = out.slice(0, q.limit);
  return out;
}

export class MemoryDriver implements StorageDriver {
  readonly name = "memory";
  private keyval = new Map<string, Map<string, unknown>>();
  private maps = new Map<string, Map<string, Map<string, unknown>>>();
  private archives = new Map<string, Map<string, Row[]>>();
  private seq = 0;

  constructor(private archiveItemLimit = Infinity) {}

  private table<T>(tables: Map<string, Map<string, T>>, host: string, store: string) {
    const key = host + "\u0000" + store;
    let t = tables.get(key);
    if (!t) tables.set(key, t = new Map());
    return t;
  }

  open(host: string, store: string, type: "keyval"): KeyValStore;
  open(host: string, store: string, type: "map"): MapStore;
  open(host: string, store: string, type: "archive"): ArchiveStore;
  open(host: string, store: string, type: StoreType): KeyValStore | MapStore | ArchiveStore;
  open(host: string, store: string, type: StoreType): KeyValStore | MapStore | ArchiveStore {
    if (type === "keyval") return this.openKeyVal(this.table(this.keyval, host, store));
    if (type === "map") return this.openMap(this.table(this.maps, host, store));
    return this.openArchive(this.table(this.archives, host, store));
  }

  private openKeyVal(t: Map<string, unknown>): KeyValStore {
    return {
      get: (user) => Promise.resolve(t.has(u(user)) ? structuredClone(t.get(u(user))) : null),
      set: (user, value) => {
        if (value === null) t.delete(u(user));
        else t.set(u(user), structuredClone(value));
        return Promise.resolve();
      },
      users: async function* () {
        for (const k of t.keys()) if (k !== HOST_LEVEL) yield k;
      },
    };
  }

  private openMap(t: Map<string, Map<string, unknown>>): MapStore {
    const userMap = (user: string | null) => {
      let m = t.get(u(user));
      if (!m) t.set(u(user), m = new Map());
      return m;
    };
    return {
      get: (user, key) => {
        const m = t.get(u(user));
        return Promise.resolve(m?.has(key) ? structuredClone(m.get(key)) : null);
      },
      set: (user, key, value) => {
        if (value === null) t.get(u(user))?.delete(key);
        else userMap(user).set(key, structuredClone(value));
        return Promise.resolve();
      },
      setKeys: (user, values) => {
        const m = userMap(user);
        for (const [k, v] of Object.entries(values)) {
          if (v === REMOVE) m.delete(k);
          else m.set(k, structuredClone(v));
        }
        return Promise.resolve();
      },
      getAll: (user) => Promise.resolve(new Map(structuredClone([...t.get(u(user)) ?? []]))),
      getAllUsers: (key) => {
        const out = new Map<string, unknown>();
        for (const [user, m] of t) if (m.has(key)) out.set(user, structuredClone(m.get(key)));
        return Promise.resolve(out);
      },
      deleteAll: (key) => {
        for (const m of t.values()) m.delete(key);
        return Promise.resolve();
      },
    };
  }

  private openArchive(t: Map<string, Row[]>): ArchiveStore {
    const rowsOf = (user: string | null) => {
      let rows = t.get(u(user));
      if (!rows) t.set(u(user), rows = []);
      return rows;
    };
    const copy = (r: Row): ArchiveItem => ({
      id: r.id,
      stanza: r.stanza.clone(),
      when: r.when,
      with: r.with,
    });
    return {
      append: (user, key, stanza: Stanza, when = Date.now() / 1000, withJid = "") => {
        const rows = rowsOf(user);
        const id = key ?? newId();
        const existing = key === null ? -1 : rows.findIndex((r) => r.id === key);
        if (existing !== -1) rows.splice(existing, 1);
        else if (rows.length >= this.archiveItemLimit) {
          return Promise.reject(new StorageError("quota-limit", "archive is full"));
        }
        rows.push({ seq: ++this.seq, id, stanza: stanza.clone(), when, with: withJid });
        return Promise.resolve(id);
      },
      find: (user, q) => {
        try {
          return Promise.resolve(queryRows(t.get(u(user)) ?? [], q).map(copy));
        } catch (e) {
          return Promise.reject(e);
        }
      },
      count: (user, q) => {
        try {
          return Promise.resolve(
            queryRows(t.get(u(user)) ?? [], { ...q, limit: undefined }).length,
          );
        } catch (e) {
          return Promise.reject(e);
        }
      },
      get: (user, key) => {
        const r = t.get(u(user))?.find((r) => r.id === key);
        return Promise.resolve(r ? copy(r) : null);
      },
      delete: (user, q = {}) => {
        const rows = t.get(u(user)) ?? [];
        let doomed: Row[];
        if (q.truncate !== undefined) {
          const n = q.truncate;
          doomed = q.reverse ? rows.slice(n) : rows.slice(0, Math.max(0, rows.length - n));
        } else {
          doomed = queryRows(rows, { ...q, limit: undefined, reverse: false });
        }
        const gone = new Set(doomed);
        t.set(u(user), rows.filter((r) => !gone.has(r)));
        return Promise.resolve(doomed.length);
      },
      users: async function* () {
        for (const [k, rows] of t) if (k !== HOST_LEVEL && rows.length) yield k;
      },
    };
  }

  purge(host: string, user: string): Promise<void> {
    const prefix = host + "\u0000";
    for (
      const tables of [this.keyval, this.maps, this.archives] as Map<string, Map<string, unknown>>[]
    ) {
      for (const [key, t] of tables) if (key.startsWith(prefix)) t.delete(user);
    }
    return Promise.resolve();
  }

  close(): void {}
}
