/**
 * The `sqlite` storage driver (the default): one file,
 * `<dataPath>/cadence.sqlite`, in WAL mode, through Deno's built-in
 * `node:sqlite`. Values are JSON text; archived stanzas use the compact JSON
 * of `stanza_codec.ts`. The schema is created or migrated when the file is
 * opened; after that every call is one or a few cached prepared statements.
 *
 * Durability: WAL with `synchronous = NORMAL`, so a committed write survives
 * a crash or kill of the process; only a power loss may lose the last moments.
 *
 * @example
 * ```ts
 * const driver = new SqliteDriver({ dataPath: "./data" });
 * const accounts = driver.open("example.com", "accounts", "keyval");
 * await accounts.set("juliet", { password: "s3cret" });
 * driver.close();
 * ```
 * @module
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { join } from "node:path";
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

/** The file name inside the data directory. */
export const DATABASE_FILE = "cadence.sqlite";

/**
 * Schema changes, in order: `MIGRATIONS[n]` takes a database from version n
 * to n + 1. Append only; never edit a released step.
 */
export const MIGRATIONS = [
  `CREATE TABLE keyval (
     host TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, value TEXT NOT NULL,
     PRIMARY KEY (host, store, user)) WITHOUT ROWID;
   CREATE TABLE map (
     host TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, key TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (host, store, user, key)) WITHOUT ROWID;
   CREATE TABLE archive (
     sort_id INTEGER PRIMARY KEY AUTOINCREMENT,
     host TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, key TEXT NOT NULL,
     "when" REAL NOT NULL, "with" TEXT NOT NULL, stanza TEXT NOT NULL);
   CREATE UNIQUE INDEX archive_key ON archive (host, store, user, key);
   CREATE INDEX archive_order ON archive (host, store, user, sort_id);
   CREATE INDEX archive_with ON archive (host, store, user, "with", sort_id);
   CREATE INDEX archive_when ON archive (host, store, user, "when");`,
  // Expiry across users deletes the oldest items of a store by time.
  `CREATE INDEX archive_expiry ON archive (host, store, "when");`,
  // Each user's items together, in storage order (`sort_id` counts per user),
  // as a file per user would keep them: reading a page of one archive and
  // deleting its oldest items touch few pages, whatever the other users hold.
  `CREATE TABLE archive_v3 (
     host TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, sort_id INTEGER NOT NULL,
     key TEXT NOT NULL, "when" REAL NOT NULL, "with" TEXT NOT NULL, stanza TEXT NOT NULL,
     PRIMARY KEY (host, store, user, sort_id)) WITHOUT ROWID;
   INSERT INTO archive_v3 (host, store, user, sort_id, key, "when", "with", stanza)
     SELECT host, store, user, sort_id, key, "when", "with", stanza FROM archive
     ORDER BY host, store, user, sort_id;
   DROP TABLE archive;
   DELETE FROM sqlite_sequence WHERE name = 'archive';
   ALTER TABLE archive_v3 RENAME TO archive;
   CREATE UNIQUE INDEX archive_key ON archive (host, store, user, key);
   CREATE INDEX archive_with ON archive (host, store, user, "with", sort_id);
   CREATE INDEX archive_when ON archive (host, store, user, "when");`,
];

/** Host-level data (`user` null) is stored under the empty name, as Prosody's SQL driver does. */
const u = (user: string | null): string => user ?? "";

/** The database connection with its cache of prepared statements. */
class Db {
  private statements = new Map<string, StatementSync>();

  constructor(readonly conn: DatabaseSync) {}

  /** A prepared statement, cached by its text. */
  sql(text: string): StatementSync {
    let s = this.statements.get(text);
    if (!s) this.statements.set(text, s = this.conn.prepare(text));
    return s;
  }

  /** Runs `fn` in a write transaction: all of it, or nothing if it throws. */
  transaction<T>(fn: () => T): T {
    this.sql("BEGIN IMMEDIATE").run();
    try {
      const result = fn();
      this.sql("COMMIT").run();
      return result;
    } catch (e) {
      this.sql("ROLLBACK").run();
      throw e;
    }
  }

  close(): void {
    this.statements.clear();
    if (this.conn.isOpen) this.conn.close();
  }
}

/** Brings the schema up to date, in one transaction. */
function migrate(db: Db): void {
  db.transaction(() => {
    db.conn.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    const row = db.conn.prepare("SELECT version FROM schema_version").get();
    const version = Number(row?.version ?? 0);
    if (version > MIGRATIONS.length) {
      throw new Error(
        `its schema version ${version} is newer than this Cadence knows (${MIGRATIONS.length})`,
      );
    }
    if (version === MIGRATIONS.length) return;
    for (const step of MIGRATIONS.slice(version)) db.conn.exec(step);
    db.conn.exec("DELETE FROM schema_version");
    db.conn.prepare("INSERT INTO schema_version (version) VALUES (?)").run(MIGRATIONS.length);
  });
}

/**
 * The SQLite driver. Opens (and if needed creates) the database file and its
 * directory when constructed; opening stores does no I/O.
 *
 * @example
 * ```ts
 * const driver = new SqliteDriver({ dataPath: "/var/lib/cadence", archiveItemLimit: 10000 });
 * const roster = driver.open("example.com", "roster", "map");
 * ```
 */
export class SqliteDriver implements StorageDriver {
  readonly name = "sqlite";
  /** The database file. */
  readonly path: string;
  readonly caps: ArchiveCaps;
  private db: Db;

  constructor(opts: { dataPath: string; archiveItemLimit?: number }) {
    this.path = join(opts.dataPath, DATABASE_FILE);
    this.caps = archiveCaps(opts.archiveItemLimit ?? Infinity);
    let conn: DatabaseSync | undefined;
    try {
      Deno.mkdirSync(opts.dataPath, { recursive: true, mode: 0o750 });
      conn = new DatabaseSync(this.path);
      conn.exec("PRAGMA journal_mode = WAL");
      conn.exec("PRAGMA synchronous = NORMAL");
      conn.exec("PRAGMA busy_timeout = 5000");
      this.db = new Db(conn);
      migrate(this.db);
    } catch (e) {
      if (conn?.isOpen) conn.close();
      throw new StorageError(
        "internal-server-error",
        `cannot open the database ${this.path}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  open<T = unknown>(host: string, store: string, type: "keyval"): KeyValStore<T>;
  open<T = unknown>(host: string, store: string, type: "map"): MapStore<T>;
  open(host: string, store: string, type: "archive"): ArchiveStore;
  open(host: string, store: string, type: StoreType): KeyValStore | MapStore | ArchiveStore;
  open(host: string, store: string, type: StoreType): KeyValStore | MapStore | ArchiveStore {
    if (type === "keyval") return new SqliteKeyVal(this.db, host, store);
    if (type === "map") return new SqliteMap(this.db, host, store);
    return new SqliteArchive(this.db, host, store, this.caps);
  }

  purge(host: string, user: string): Promise<void> {
    return settle(() =>
      this.db.transaction(() => {
        this.db.sql("DELETE FROM keyval WHERE host = ? AND user = ?").run(host, user);
        this.db.sql("DELETE FROM map WHERE host = ? AND user = ?").run(host, user);
        this.db.sql("DELETE FROM archive WHERE host = ? AND user = ?").run(host, user);
      })
    );
  }

  close(): void {
    this.db.close();
  }
}

class SqliteKeyVal<T> implements KeyValStore<T> {
  constructor(private db: Db, private host: string, private store: string) {}

  get(user: string | null): Promise<T | null> {
    return settle(() => {
      const row = this.db.sql("SELECT value FROM keyval WHERE host = ? AND store = ? AND user = ?")
        .get(this.host, this.store, u(user));
      return row ? JSON.parse(row.value as string) : null;
    });
  }

  set(user: string | null, value: T | null): Promise<void> {
    return settle(() => {
      if (value == null) {
        this.db.sql("DELETE FROM keyval WHERE host = ? AND store = ? AND user = ?")
          .run(this.host, this.store, u(user));
      } else {
        this.db.sql("INSERT OR REPLACE INTO keyval (host, store, user, value) VALUES (?, ?, ?, ?)")
          .run(this.host, this.store, u(user), encodeValue(value));
      }
    });
  }

  async *users(): AsyncIterable<string> {
    const rows = this.db.sql("SELECT user FROM keyval WHERE host = ? AND store = ? AND user != ''")
      .all(this.host, this.store);
    for (const row of rows) yield row.user as string;
  }
}

class SqliteMap<T> implements MapStore<T> {
  constructor(private db: Db, private host: string, private store: string) {}

  get(user: string | null, key: string): Promise<T | null> {
    return settle(() => {
      const row = this.db
        .sql("SELECT value FROM map WHERE host = ? AND store = ? AND user = ? AND key = ?")
        .get(this.host, this.store, u(user), key);
      return row ? JSON.parse(row.value as string) : null;
    });
  }

  set(user: string | null, key: string, value: T | null): Promise<void> {
    return settle(() => this.write(user, key, value == null ? null : encodeValue(value)));
  }

  setKeys(user: string | null, values: Record<string, T | typeof REMOVE>): Promise<void> {
    return settle(() => {
      const changes = Object.entries(values).map(([key, v]) =>
        [key, v === REMOVE || v == null ? null : encodeValue(v)] as const
      );
      this.db.transaction(() => {
        for (const [key, json] of changes) this.write(user, key, json);
      });
    });
  }

  /** Stores JSON text, or deletes the key when it is `null`. */
  private write(user: string | null, key: string, json: string | null): void {
    if (json === null) {
      this.db.sql("DELETE FROM map WHERE host = ? AND store = ? AND user = ? AND key = ?")
        .run(this.host, this.store, u(user), key);
    } else {
      this.db
        .sql("INSERT OR REPLACE INTO map (host, store, user, key, value) VALUES (?, ?, ?, ?, ?)")
        .run(this.host, this.store, u(user), key, json);
    }
  }

  getAll(key: string): Promise<Map<string, T>> {
    return settle(() => {
      const rows = this.db
        .sql("SELECT user, value FROM map WHERE host = ? AND store = ? AND key = ? AND user != ''")
        .all(this.host, this.store, key);
      return new Map(rows.map((r) => [r.user as string, JSON.parse(r.value as string)]));
    });
  }

  deleteAll(key: string): Promise<void> {
    return settle(() => {
      this.db.sql("DELETE FROM map WHERE host = ? AND store = ? AND key = ?")
        .run(this.host, this.store, key);
    });
  }
}

const ITEM_COLUMNS = `key, "when", "with", stanza`;

class SqliteArchive implements ArchiveStore {
  constructor(
    private db: Db,
    private host: string,
    private store: string,
    readonly caps: ArchiveCaps,
  ) {}

  append(
    user: string | null,
    key: string | null,
    stanza: Stanza,
    when = Date.now() / 1000,
    withJid = "",
  ): Promise<string> {
    return settle(() => {
      const id = key ?? newId();
      const json = encodeStanza(stanza);
      const owner = [this.host, this.store, u(user)];
      this.db.transaction(() => {
        if (key !== null) {
          this.db.sql("DELETE FROM archive WHERE host = ? AND store = ? AND user = ? AND key = ?")
            .run(...owner, key);
        }
        if (this.caps.quota !== Infinity) {
          const row = this.db
            .sql("SELECT COUNT(*) AS n FROM archive WHERE host = ? AND store = ? AND user = ?")
            .get(...owner);
          if (Number(row?.n) >= this.caps.quota) {
            throw new StorageError("quota-limit", "the archive is full");
          }
        }
        const next = this.db.sql(
          `SELECT COALESCE(MAX(sort_id), 0) + 1 AS n FROM archive
           WHERE host = ? AND store = ? AND user = ?`,
        ).get(...owner)!.n as number;
        this.db.sql(
          `INSERT INTO archive (host, store, user, sort_id, key, "when", "with", stanza)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(...owner, next, id, when, withJid, json);
      });
      return id;
    });
  }

  find(user: string | null, query: ArchiveQuery = {}): Promise<ArchiveItem[]> {
    return settle(() => {
      const w = this.where(user, query, true);
      const order = query.reverse ? "DESC" : "ASC";
      const limit = query.limit === undefined ? -1 : Math.max(0, Math.floor(query.limit));
      const rows = this.db
        .sql(`SELECT ${ITEM_COLUMNS} FROM archive WHERE ${w.sql} ORDER BY sort_id ${order} LIMIT ?`)
        .all(...w.params, limit);
      return rows.map(toItem);
    });
  }

  count(user: string | null, query: ArchiveQuery = {}): Promise<number> {
    return settle(() => {
      const w = this.where(user, query, false);
      const row = this.db.sql(`SELECT COUNT(*) AS n FROM archive WHERE ${w.sql}`).get(...w.params);
      return Number(row?.n);
    });
  }

  get(user: string | null, key: string): Promise<ArchiveItem | null> {
    return settle(() => {
      const row = this.db.sql(
        `SELECT ${ITEM_COLUMNS} FROM archive WHERE host = ? AND store = ? AND user = ? AND key = ?`,
      ).get(this.host, this.store, u(user), key);
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
      const { changes } = this.db.sql(
        `UPDATE archive SET stanza = ?, "when" = COALESCE(?, "when"), "with" = COALESCE(?, "with")
         WHERE host = ? AND store = ? AND user = ? AND key = ?`,
      ).run(
        encodeStanza(stanza),
        when ?? null,
        withJid ?? null,
        this.host,
        this.store,
        u(user),
        key,
      );
      if (Number(changes) === 0) throw new StorageError("item-not-found", `no archive item ${key}`);
    });
  }

  delete(user: string | null, query: ArchiveQuery = {}): Promise<number> {
    return settle(() => {
      const w = this.where(user, query, true);
      if (query.truncate === undefined) {
        return Number(this.db.sql(`DELETE FROM archive WHERE ${w.sql}`).run(...w.params).changes);
      }
      // Skip the `truncate` items to keep (newest first, or oldest with `reverse`); delete the rest.
      const order = query.reverse ? "ASC" : "DESC";
      const keep = Math.max(0, Math.floor(query.truncate));
      const { changes } = this.db.sql(
        `DELETE FROM archive WHERE host = ? AND store = ? AND user = ? AND sort_id IN (
           SELECT sort_id FROM archive WHERE ${w.sql} ORDER BY sort_id ${order} LIMIT -1 OFFSET ?)`,
      ).run(this.host, this.store, u(user), ...w.params, keep);
      return Number(changes);
    });
  }

  /** The user the last expiry stopped at: the next one goes on from there. */
  private expiryCursor = "";

  expire(before: number, limit: number): Promise<number> {
    // User by user, each one's old items in one run from the start of their
    // archive: the pages touched follow what is deleted, not the archive's
    // size. The walk goes round once, from where the last call stopped.
    const max = Math.floor(limit);
    if (!(max > 0)) return Promise.resolve(0);
    const owner = [this.host, this.store] as const;
    // The next user after `after` (and below `below`), in SQLite's order of names.
    const nextUser = (after: string, inclusive: boolean, below?: string) =>
      this.db.sql(
        `SELECT user FROM archive WHERE host = ? AND store = ? AND user ${inclusive ? ">=" : ">"} ?
         ${below === undefined ? "" : "AND user < ?"} ORDER BY user LIMIT 1`,
      ).get(...owner, after, ...(below === undefined ? [] : [below]))?.user as string | undefined;
    return settle(() =>
      this.db.transaction(() => {
        const start = this.expiryCursor;
        let left = max;
        let below: string | undefined; // on the second pass: up to where this call began
        let user = nextUser(start, true);
        while (left > 0) {
          if (user === undefined) {
            if (below !== undefined || start === "") break;
            below = start;
            user = nextUser("", true, below);
            continue;
          }
          const { changes } = this.db.sql(
            `DELETE FROM archive WHERE host = ? AND store = ? AND user = ? AND sort_id IN (
               SELECT sort_id FROM archive INDEXED BY archive_when
               WHERE host = ? AND store = ? AND user = ? AND "when" < ? ORDER BY "when" LIMIT ?)`,
          ).run(...owner, user, ...owner, user, before, left);
          left -= Number(changes);
          if (left > 0) user = nextUser(user, false, below);
        }
        this.expiryCursor = left > 0 ? "" : user!; // (left is 0 only right after `user`'s delete)
        return max - left;
      })
    );
  }

  async *users(): AsyncIterable<string> {
    const rows = this.db
      .sql("SELECT DISTINCT user FROM archive WHERE host = ? AND store = ? AND user != ''")
      .all(this.host, this.store);
    for (const row of rows) yield row.user as string;
  }

  /** The WHERE clause of a query; with `paging`, also its `before`/`after` id range. */
  private where(user: string | null, q: ArchiveQuery, paging: boolean) {
    let sql = "host = ? AND store = ? AND user = ?";
    const params: SQLInputValue[] = [this.host, this.store, u(user)];
    const add = (clause: string, value: SQLInputValue) => {
      sql += ` AND ${clause}`;
      params.push(value);
    };
    if (q.start !== undefined) add(`"when" >= ?`, q.start);
    if (q.end !== undefined) add(`"when" <= ?`, q.end);
    if (q.with !== undefined) add(`"with" = ?`, q.with);
    if (q.key !== undefined) add("key = ?", q.key);
    if (q.ids !== undefined) add("key IN (SELECT value FROM json_each(?))", JSON.stringify(q.ids));
    if (paging && q.after !== undefined) add("sort_id > ?", this.sortId(user, q.after));
    if (paging && q.before !== undefined) add("sort_id < ?", this.sortId(user, q.before));
    return { sql, params };
  }

  /** The storage position of an item; throws `item-not-found`. */
  private sortId(user: string | null, key: string): number {
    const row = this.db
      .sql("SELECT sort_id FROM archive WHERE host = ? AND store = ? AND user = ? AND key = ?")
      .get(this.host, this.store, u(user), key);
    if (!row) throw new StorageError("item-not-found", `no archive item ${key}`);
    return Number(row.sort_id);
  }
}

function toItem(row: Record<string, unknown>): ArchiveItem {
  return {
    id: row.key as string,
    stanza: decodeStanza(row.stanza as string),
    when: row.when as number,
    with: row.with as string,
  };
}
