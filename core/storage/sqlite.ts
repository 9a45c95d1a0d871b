/**
 * The `sqlite` storage driver (the default): one SQLite file,
 * `<data_path>/cadence.sqlite`, in WAL mode, through Deno's built-in
 * `node:sqlite`. Values are JSON; archived stanzas are XML.
 *
 * @example
 * ```ts
 * const driver = new SqliteDriver("./data");
 * const store = this.open("localhost", "accounts", "keyval");
 * await store.set("juliet", { password: "x" });
 * this.close();
 * ```
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
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
import { parseXml } from "../xml/parser.ts";

const SCHEMA_VERSION = 1;
/** Host-level data (`user` null) is stored under the empty username. */
const u = (user: string | null) => user ?? "";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS keyval (
  host TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (host, store, user));
CREATE TABLE IF NOT EXISTS map (
  host TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, key TEXT NOT NULL,
  value TEXT NOT NULL, PRIMARY KEY (host, store, user, key));
CREATE TABLE IF NOT EXISTS archive (
  sort_id INTEGER PRIMARY KEY AUTOINCREMENT,
  host TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, key TEXT NOT NULL,
  "when" REAL NOT NULL, "with" TEXT NOT NULL, stanza TEXT NOT NULL,
  UNIQUE (host, store, user, key));
CREATE INDEX IF NOT EXISTS archive_when ON archive (host, store, user, "when");
`;

export class SqliteDriver implements StorageDriver {
  readonly name = "sqlite";
  readonly path: string;
  private db: DatabaseSync;
  private statements = new Map<string, StatementSync>();

  constructor(dataPath: string, private archiveItemLimit = Infinity) {
    mkdirSync(dataPath, { recursive: true });
    this.path = join(dataPath, "cadence.sqlite");
    try {
      this.db = new DatabaseSync(this.path);
      this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
      this.db.exec(SCHEMA);
      const row = this.db.prepare("PRAGMA user_version").get() as { user_version: number };
      if (row.user_version > SCHEMA_VERSION) {
        throw new Error(`made by a newer Cadence (schema ${row.user_version})`);
      }
      this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    } catch (e) {
      throw new StorageError("open-failed", `cannot open ${this.path}: ${(e as Error).message}`);
    }
  }

  /** A cached prepared statement. */
  private sql(text: string): StatementSync {
    let s = this.statements.get(text);
    if (!s) this.statements.set(text, s = this.db.prepare(text));
    return s;
  }

  private transaction(fn: () => void): void {
    this.db.exec("BEGIN");
    try {
      fn();
      this.db.exec("COMMIT");
    } catch (e) {
      this.db.exec("ROLLBACK");
      throw e;
    }
  }

  open(host: string, store: string, type: "keyval"): KeyValStore;
  open(host: string, store: string, type: "map"): MapStore;
  open(host: string, store: string, type: "archive"): ArchiveStore;
  open(host: string, store: string, type: StoreType): KeyValStore | MapStore | ArchiveStore;
  open(host: string, store: string, type: StoreType): KeyValStore | MapStore | ArchiveStore {
    if (type === "keyval") return this.openKeyVal(host, store);
    if (type === "map") return this.openMap(host, store);
    return this.openArchive(host, store);
  }

  private openKeyVal(host: string, store: string): KeyValStore {
    const get = "SELECT value FROM keyval WHERE host = ? AND store = ? AND user = ?";
    const put = "INSERT OR REPLACE INTO keyval (host, store, user, value) VALUES (?, ?, ?, ?)";
    const del = "DELETE FROM keyval WHERE host = ? AND store = ? AND user = ?";
    const users = "SELECT user FROM keyval WHERE host = ? AND store = ? AND user != ''";
    return {
      get: (user) => {
        const row = this.sql(get).get(host, store, u(user)) as { value: string } | undefined;
        return Promise.resolve(row ? JSON.parse(row.value) : null);
      },
      set: (user, value) => {
        if (value === null) this.sql(del).run(host, store, u(user));
        else this.sql(put).run(host, store, u(user), JSON.stringify(value));
        return Promise.resolve();
      },
      users: () => {
        const rows = this.sql(users).all(host, store) as { user: string }[];
        return toAsync(rows.map((r) => r.user));
      },
    };
  }

  private openMap(host: string, store: string): MapStore {
    const get = "SELECT value FROM map WHERE host = ? AND store = ? AND user = ? AND key = ?";
    const put = "INSERT OR REPLACE INTO map (host, store, user, key, value) VALUES (?, ?, ?, ?, ?)";
    const del = "DELETE FROM map WHERE host = ? AND store = ? AND user = ? AND key = ?";
    const all = "SELECT key, value FROM map WHERE host = ? AND store = ? AND user = ?";
    const allUsers = "SELECT user, value FROM map WHERE host = ? AND store = ? AND key = ?";
    const delAll = "DELETE FROM map WHERE host = ? AND store = ? AND key = ?";
    const set = (user: string | null, key: string, value: unknown) => {
      if (value === null || value === REMOVE) this.sql(del).run(host, store, u(user), key);
      else this.sql(put).run(host, store, u(user), key, JSON.stringify(value));
    };
    return {
      get: (user, key) => {
        const row = this.sql(get).get(host, store, u(user), key) as { value: string } | undefined;
        return Promise.resolve(row ? JSON.parse(row.value) : null);
      },
      set: (user, key, value) => {
        set(user, key, value);
        return Promise.resolve();
      },
      setKeys: (user, values) => {
        this.transaction(() => {
          for (const [k, v] of Object.entries(values)) set(user, k, v);
        });
        return Promise.resolve();
      },
      getAll: (user) => {
        const rows = this.sql(all).all(host, store, u(user)) as { key: string; value: string }[];
        return Promise.resolve(new Map(rows.map((r) => [r.key, JSON.parse(r.value)])));
      },
      getAllUsers: (key) => {
        const rows = this.sql(allUsers).all(host, store, key) as { user: string; value: string }[];
        return Promise.resolve(new Map(rows.map((r) => [r.user, JSON.parse(r.value)])));
      },
      deleteAll: (key) => {
        this.sql(delAll).run(host, store, key);
        return Promise.resolve();
      },
    };
  }

  private openArchive(host: string, store: string): ArchiveStore {
    const anchor = (user: string | null, id: string): number => {
      const row = this.sql(
        "SELECT sort_id FROM archive WHERE host = ? AND store = ? AND user = ? AND key = ?",
      ).get(host, store, u(user), id) as { sort_id: number } | undefined;
      if (!row) throw new StorageError("item-not-found", `no archive item ${id}`);
      return row.sort_id;
    };
    /** WHERE clause and parameters for a query. */
    const where = (user: string | null, q: ArchiveQuery) => {
      let sql = "host = ? AND store = ? AND user = ?";
      const params: (string | number)[] = [host, store, u(user)];
      if (q.after !== undefined) {
        sql += " AND sort_id > ?";
        params.push(anchor(user, q.after));
      }
      if (q.before !== undefined) {
        sql += " AND sort_id < ?";
        params.push(anchor(user, q.before));
      }
      if (q.start !== undefined) {
        sql += ` AND "when" >= ?`;
        params.push(q.start);
      }
      if (q.end !== undefined) {
        sql += ` AND "when" <= ?`;
        params.push(q.end);
      }
      if (q.with !== undefined) {
        sql += ` AND "with" = ?`;
        params.push(q.with);
      }
      if (q.key !== undefined) {
        sql += " AND key = ?";
        params.push(q.key);
      }
      if (q.ids !== undefined) {
        sql += ` AND key IN (${q.ids.map(() => "?").join(",") || "NULL"})`;
        params.push(...q.ids);
      }
      return { sql, params };
    };
    const toItem = (r: { key: string; when: number; with: string; stanza: string }) => ({
      id: r.key,
      when: r.when,
      with: r.with,
      stanza: parseXml(r.stanza),
    });
    return {
      // deno-lint-ignore require-await
      append: async (user, key, stanza: Stanza, when = Date.now() / 1000, withJid = "") => {
        const id = key ?? newId();
        const xml = stanza.toString();
        this.transaction(() => {
          const existing = key !== null &&
            this.sql(
                "DELETE FROM archive WHERE host = ? AND store = ? AND user = ? AND key = ?",
              ).run(host, store, u(user), key).changes > 0;
          if (!existing && this.archiveItemLimit !== Infinity) {
            const { n } = this.sql(
              "SELECT COUNT(*) AS n FROM archive WHERE host = ? AND store = ? AND user = ?",
            ).get(host, store, u(user)) as { n: number };
            if (n >= this.archiveItemLimit) {
              throw new StorageError("quota-limit", "archive is full");
            }
          }
          this.sql(
            `INSERT INTO archive (host, store, user, key, "when", "with", stanza)
             VALUES (?, ?, ?, ?, ?, ?, ?)`,
          ).run(host, store, u(user), id, when, withJid, xml);
        });
        return id;
      },
      find: (user, q = {}) => {
        try {
          const w = where(user, q);
          let sql =
            `SELECT key, "when", "with", stanza FROM archive WHERE ${w.sql} ORDER BY sort_id`;
          if (q.reverse) sql += " DESC";
          if (q.limit !== undefined) sql += ` LIMIT ${Math.max(0, Math.floor(q.limit))}`;
          const rows = this.db.prepare(sql).all(...w.params) as {
            key: string;
            when: number;
            with: string;
            stanza: string;
          }[];
          return Promise.resolve(rows.map(toItem));
        } catch (e) {
          return Promise.reject(e);
        }
      },
      count: (user, q = {}) => {
        try {
          const w = where(user, q);
          const row = this.db.prepare(`SELECT COUNT(*) AS n FROM archive WHERE ${w.sql}`)
            .get(...w.params) as { n: number };
          return Promise.resolve(row.n);
        } catch (e) {
          return Promise.reject(e);
        }
      },
      get: (user, key) => {
        const row = this.sql(
          `SELECT key, "when", "with", stanza FROM archive
           WHERE host = ? AND store = ? AND user = ? AND key = ?`,
        ).get(host, store, u(user), key) as
          | { key: string; when: number; with: string; stanza: string }
          | undefined;
        return Promise.resolve(row ? toItem(row) as ArchiveItem : null);
      },
      delete: (user, q = {}) => {
        try {
          if (q.truncate !== undefined) {
            const order = q.reverse ? "ASC" : "DESC";
            const r = this.db.prepare(
              `DELETE FROM archive WHERE host = ? AND store = ? AND user = ? AND sort_id NOT IN (
                 SELECT sort_id FROM archive WHERE host = ? AND store = ? AND user = ?
                 ORDER BY sort_id ${order} LIMIT ?)`,
            ).run(host, store, u(user), host, store, u(user), q.truncate);
            return Promise.resolve(Number(r.changes));
          }
          const w = where(user, q);
          const r = this.db.prepare(`DELETE FROM archive WHERE ${w.sql}`).run(...w.params);
          return Promise.resolve(Number(r.changes));
        } catch (e) {
          return Promise.reject(e);
        }
      },
      users: () => {
        const rows = this.sql(
          "SELECT DISTINCT user FROM archive WHERE host = ? AND store = ? AND user != ''",
        ).all(host, store) as { user: string }[];
        return toAsync(rows.map((r) => r.user));
      },
    };
  }

  purge(host: string, user: string): Promise<void> {
    this.transaction(() => {
      for (const table of ["keyval", "map", "archive"]) {
        this.sql(`DELETE FROM ${table} WHERE host = ? AND user = ?`).run(host, user);
      }
    });
    return Promise.resolve();
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}

async function* toAsync<T>(items: T[]): AsyncIterable<T> {
  for (const item of items) yield item;
}
