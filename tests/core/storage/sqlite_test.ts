import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { MIGRATIONS, SqliteDriver } from "../../../core/storage/sqlite.ts";
import { encodeStanza } from "../../../core/storage/stanza_codec.ts";
import { REMOVE, StorageError } from "../../../core/storage/types.ts";
import { message } from "../../../core/xml/stanza.ts";
import { driverSuite } from "./driver_suite.ts";

driverSuite("sqlite", async (opts) => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-sqlite-" });
  return {
    driver: new SqliteDriver({ dataPath: dir, ...opts }),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
});

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function withTempDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cadence-sqlite-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("sqlite: creates the directory and one WAL database file in it", async () => {
  await withTempDir(async (dir) => {
    const dataPath = join(dir, "not", "yet");
    const d = new SqliteDriver({ dataPath });
    assert.equal(d.path, join(dataPath, "cadence.sqlite"));
    await d.open("example.com", "accounts", "keyval").set("juliet", 1);
    d.close();
    assert.ok(Deno.statSync(d.path).isFile);
    const db = new DatabaseSync(d.path);
    try {
      assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
      assert.equal(db.prepare("SELECT version FROM schema_version").get()?.version, 3);
    } finally {
      db.close();
    }
  });
});

Deno.test("sqlite: data survives closing and reopening the file", async () => {
  await withTempDir(async (dir) => {
    let d = new SqliteDriver({ dataPath: dir });
    await d.open("example.com", "accounts", "keyval").set("juliet", { password: "pw" });
    await d.open("example.com", "accounts", "keyval").set(null, { host: "data" });
    await d.open("example.com", "roster", "map").set("juliet", "romeo@example.com", { n: "R" });
    const log = d.open("example.com", "offline", "archive");
    const s = message({ from: "romeo@example.com" }, "a < b & c");
    const first = await log.append("juliet", null, s, 1.5, "romeo@example.com");
    d.close();

    d = new SqliteDriver({ dataPath: dir });
    try {
      const accounts = d.open("example.com", "accounts", "keyval");
      assert.deepEqual(await accounts.get("juliet"), { password: "pw" });
      assert.deepEqual(await accounts.get(null), { host: "data" });
      const roster = d.open("example.com", "roster", "map");
      assert.deepEqual(await roster.get("juliet", "romeo@example.com"), { n: "R" });
      const archive = d.open("example.com", "offline", "archive");
      const item = await archive.get("juliet", first);
      assert.equal(item?.stanza.toString(), s.toString());
      assert.equal(item?.when, 1.5);
      assert.equal(item?.with, "romeo@example.com");
      // Storage order continues after the reopen, even with an older timestamp.
      await archive.append("juliet", null, message({}, "later"), 0.5);
      assert.deepEqual(
        (await archive.find("juliet")).map((i) => i.stanza.getChildText("body")),
        ["a < b & c", "later"],
      );
      assert.equal((await archive.find("juliet", { after: first }))[0].when, 0.5);
    } finally {
      d.close();
    }
  });
});

Deno.test("sqlite: two drivers on one file see each other's writes", async () => {
  await withTempDir(async (dir) => {
    const a = new SqliteDriver({ dataPath: dir });
    const b = new SqliteDriver({ dataPath: dir });
    try {
      await a.open("example.com", "s", "keyval").set("juliet", 1);
      assert.equal(await b.open("example.com", "s", "keyval").get("juliet"), 1);
    } finally {
      a.close();
      b.close();
    }
  });
});

Deno.test("sqlite: a file that is not a database gives a clear StorageError", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "cadence.sqlite");
    Deno.writeTextFileSync(path, "this is not a database, just some text ".repeat(100));
    assert.throws(
      () => new SqliteDriver({ dataPath: dir }),
      (e) => e instanceof StorageError && e.message.includes(path),
    );
  });
});

Deno.test("sqlite: a schema newer than this version is refused", async () => {
  await withTempDir((dir) => {
    new SqliteDriver({ dataPath: dir }).close();
    const db = new DatabaseSync(join(dir, "cadence.sqlite"));
    db.exec("UPDATE schema_version SET version = 99");
    db.close();
    assert.throws(
      () => new SqliteDriver({ dataPath: dir }),
      (e) => e instanceof StorageError && /schema version 99/.test(e.message),
    );
  });
});

Deno.test("sqlite: reopening an up-to-date file keeps it as it is", async () => {
  await withTempDir((dir) => {
    new SqliteDriver({ dataPath: dir }).close();
    new SqliteDriver({ dataPath: dir }).close();
    const db = new DatabaseSync(join(dir, "cadence.sqlite"));
    try {
      assert.deepEqual(
        db.prepare("SELECT version FROM schema_version").all().map((r) => r.version),
        [MIGRATIONS.length],
      );
    } finally {
      db.close();
    }
  });
});

for (const version of [1, 2]) {
  Deno.test(`sqlite: a file of schema version ${version} is brought up to date, its data kept`, async () => {
    await withTempDir(async (dir) => {
      // What that release wrote: its schema, archive items in a global storage order.
      let db = new DatabaseSync(join(dir, "cadence.sqlite"));
      for (const step of MIGRATIONS.slice(0, version)) db.exec(step);
      db.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL);
               INSERT INTO schema_version VALUES (${version})`);
      const insert = db.prepare(
        `INSERT INTO archive (host, store, user, key, "when", "with", stanza) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      );
      const put = (user: string, key: string, when: number) =>
        insert.run("example.com", "mam", user, key, when, "", encodeStanza(message({}, key)));
      put("juliet", "j1", 5);
      put("romeo", "r1", 1);
      put("juliet", "j2", 2); // older, stored later
      db.close();

      const again = new SqliteDriver({ dataPath: dir });
      try {
        const mam = again.open("example.com", "mam", "archive");
        assert.deepEqual((await mam.find("juliet")).map((i) => i.id), ["j1", "j2"]);
        assert.equal((await mam.get("romeo", "r1"))?.stanza.getChildText("body"), "r1");
        // Storage order goes on after the migrated items.
        await mam.append("juliet", "j3", message({}, "j3"), 1);
        assert.deepEqual((await mam.find("juliet", { after: "j2" })).map((i) => i.id), ["j3"]);
        assert.equal(await mam.expire(3, 10), 3);
        assert.deepEqual((await mam.find("juliet")).map((i) => i.id), ["j1"]);
      } finally {
        again.close();
      }
      db = new DatabaseSync(join(dir, "cadence.sqlite"));
      try {
        assert.equal(
          db.prepare("SELECT version FROM schema_version").get()?.version,
          MIGRATIONS.length,
        );
        assert.equal(db.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
      } finally {
        db.close();
      }
    });
  });
}

Deno.test("sqlite: setKeys failing half-way rolls back and leaves no transaction open", async () => {
  await withTempDir(async (dir) => {
    const d = new SqliteDriver({ dataPath: dir });
    try {
      const m = d.open<number>("example.com", "m", "map");
      await m.setKeys("juliet", { a: 1, b: 2 });
      // Make the database itself refuse one key, so the failure comes mid-transaction.
      const db = new DatabaseSync(d.path);
      db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON map WHEN NEW.key = 'bad'
               BEGIN SELECT RAISE(ABORT, 'refused'); END`);
      db.close();
      await assert.rejects(
        m.setKeys("juliet", { a: 10, b: REMOVE, bad: 3 }),
        (e) => e instanceof StorageError && e.message.includes("refused"),
      );
      assert.equal(await m.get("juliet", "a"), 1);
      assert.equal(await m.get("juliet", "b"), 2);
      await m.setKeys("juliet", { a: 10, b: REMOVE });
      assert.equal(await m.get("juliet", "a"), 10);
      assert.equal(await m.get("juliet", "b"), null);
    } finally {
      d.close();
    }
  });
});

Deno.test("sqlite: a quota failure inside append rolls back cleanly", async () => {
  await withTempDir(async (dir) => {
    const d = new SqliteDriver({ dataPath: dir, archiveItemLimit: 1 });
    try {
      const log = d.open("example.com", "log", "archive");
      await log.append("juliet", "one", message({}, "1"));
      await assert.rejects(log.append("juliet", "two", message({}, "2")), StorageError);
      assert.equal(await log.get("juliet", "two"), null);
      await log.append("juliet", "one", message({}, "1 again"));
      assert.equal((await log.get("juliet", "one"))?.stanza.getChildText("body"), "1 again");
    } finally {
      d.close();
    }
  });
});

Deno.test("sqlite: expiry goes round every user whatever their names, and a batch of 0 is nothing", async () => {
  await withTempDir(async (dir) => {
    const d = new SqliteDriver({ dataPath: dir });
    try {
      const a = d.open("example.com", "mam", "archive");
      // Names that JavaScript and SQLite order differently (UTF-16 against UTF-8).
      const high = "\u{20000}", mid = "\uFA0E";
      for (let i = 0; i < 3; i++) await a.append(high, `h${i}`, message({}, "x"), i);
      assert.equal(await a.expire(10, 1), 1); // stops inside `high`'s items
      for (let i = 0; i < 3; i++) await a.append(mid, `m${i}`, message({}, "x"), i);
      assert.equal(await a.expire(10, 0), 0);
      assert.equal(await a.expire(10, -5), 0);
      assert.equal(await a.expire(10, 1000), 5);
      assert.equal(await a.count(high) + await a.count(mid), 0);
      assert.equal(await a.expire(10, 1000), 0);
    } finally {
      d.close();
    }
  });
});
