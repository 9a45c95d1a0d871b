import assert from "node:assert/strict";
import { join } from "node:path";
import { StorageManager } from "../../../core/storage/manager.ts";
import { message } from "../../../core/xml/stanza.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cadence-storage-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const exists = (path: string) => {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
};

Deno.test("storage manager: sqlite by default, in <dataPath>/cadence.sqlite", async () => {
  await withTempDir(async (dir) => {
    let sm = new StorageManager({ dataPath: dir });
    assert.equal(sm.driverFor("accounts"), "sqlite");
    await sm.open("example.com", "accounts").set("juliet", { a: 1 });
    sm.close();
    assert.ok(exists(join(dir, "cadence.sqlite")));
    sm = new StorageManager({ dataPath: dir });
    assert.deepEqual(await sm.open("example.com", "accounts").get("juliet"), { a: 1 });
    sm.close();
  });
});

Deno.test("storage manager: Prosody's internal is an alias of sqlite", async () => {
  await withTempDir(async (dir) => {
    const sm = new StorageManager({ dataPath: dir, storage: "internal" });
    assert.equal(sm.driverFor("roster"), "sqlite");
    await sm.open("example.com", "roster", "map").set("juliet", "k", 1);
    sm.close();
    const again = new StorageManager({ dataPath: dir, defaultStorage: "sqlite" });
    assert.equal(await again.open("example.com", "roster", "map").get("juliet", "k"), 1);
    again.close();
  });
});

Deno.test("storage manager: memory alone touches no disk", async () => {
  await withTempDir(async (dir) => {
    const dataPath = join(dir, "data");
    const sm = new StorageManager({ dataPath, storage: "memory", defaultStorage: "sqlite" });
    await sm.open("example.com", "accounts").set("juliet", 1);
    assert.equal(await sm.open("example.com", "accounts").get("juliet"), 1);
    sm.close();
    assert.equal(exists(dataPath), false);
  });
});

Deno.test("storage manager: a per-store map, with default_storage for the rest", async () => {
  await withTempDir(async (dir) => {
    const sm = new StorageManager({
      dataPath: dir,
      storage: { archive: "memory", roster: "internal" },
      defaultStorage: "memory",
    });
    assert.equal(sm.driverFor("archive"), "memory");
    assert.equal(sm.driverFor("roster"), "sqlite");
    assert.equal(sm.driverFor("accounts"), "memory");
    // Default of default_storage is sqlite.
    const other = new StorageManager({ dataPath: dir, storage: { archive: "memory" } });
    assert.equal(other.driverFor("accounts"), "sqlite");
    other.close();

    const archive = sm.open("example.com", "archive", "archive");
    const roster = sm.open("example.com", "roster", "map");
    const accounts = sm.open("example.com", "accounts", "keyval");
    await archive.append("juliet", null, message({}, "hi"));
    await roster.set("juliet", "romeo@example.com", { subscription: "both" });
    await accounts.set("juliet", { password: "x" });
    await roster.set("romeo", "juliet@example.com", { subscription: "both" });
    // purge goes through every driver.
    await sm.purge("example.com", "juliet");
    assert.equal(await archive.count("juliet"), 0);
    assert.equal(await roster.get("juliet", "romeo@example.com"), null);
    assert.equal(await accounts.get("juliet"), null);
    assert.deepEqual(await roster.get("romeo", "juliet@example.com"), { subscription: "both" });
    sm.close();
  });
});

Deno.test("storage manager: the archive item limit reaches the drivers", async () => {
  await withTempDir(async (dir) => {
    const sm = new StorageManager({
      dataPath: dir,
      storage: { mem: "memory" },
      archiveItemLimit: 1,
    });
    for (const store of ["mem", "archive"]) {
      const a = sm.open("example.com", store, "archive");
      assert.equal(a.caps.quota, 1);
      await a.append("juliet", null, message({}, "1"));
      await assert.rejects(a.append("juliet", null, message({}, "2")), /full/);
    }
    sm.close();
  });
});

Deno.test("storage manager: unknown or malformed driver names are rejected clearly", () => {
  const bad = (opts: object, pattern: RegExp) =>
    assert.throws(() => new StorageManager({ dataPath: "/nonexistent", ...opts }), pattern);
  const allowed = /"sqlite", "internal", "memory"/;
  bad({ storage: "sql" }, /option storage: unknown storage driver "sql"/);
  bad({ storage: "sql" }, allowed);
  bad({ defaultStorage: "files" }, /option default_storage: unknown storage driver "files"/);
  bad({ storage: { roster: "postgres" } }, /option storage\.roster: .*"postgres"/);
  bad({ storage: { roster: 42 } }, /option storage\.roster: unknown storage driver 42/);
  bad({ storage: 7 }, /option storage: expected a driver name or a map/);
  bad({ storage: "memory", archiveItemLimit: -1 }, /storage_archive_item_limit/);
});

Deno.test("storage manager: stores cannot be opened after close", () => {
  const sm = new StorageManager({ dataPath: "/nonexistent", storage: "memory" });
  sm.close();
  assert.throws(() => sm.open("example.com", "accounts"), /closed/);
});
