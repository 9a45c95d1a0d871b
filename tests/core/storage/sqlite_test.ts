import assert from "node:assert/strict";
import { SqliteDriver } from "../../../core/storage/sqlite.ts";
import { StorageManager } from "../../../core/storage/manager.ts";
import { message } from "../../../core/xml/stanza.ts";
import { driverSuite } from "./driver_suite.ts";

driverSuite("sqlite", async (limit) => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-sqlite-" });
  return {
    driver: new SqliteDriver(dir, limit),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
});

Deno.test("sqlite: data survives closing and reopening the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-sqlite-" });
  try {
    let d = new SqliteDriver(dir);
    await d.open("localhost", "accounts", "keyval").set("juliet", { password: "pw" });
    await d.open("localhost", "roster", "map").set("juliet", "romeo@localhost", { name: "R" });
    const id = await d.open("localhost", "offline", "archive")
      .append("juliet", null, message({ from: "romeo@localhost" }, "a < b & c"), 1.5);
    d.close();
    d = new SqliteDriver(dir);
    assert.deepEqual(await d.open("localhost", "accounts", "keyval").get("juliet"), {
      password: "pw",
    });
    assert.deepEqual(await d.open("localhost", "roster", "map").get("juliet", "romeo@localhost"), {
      name: "R",
    });
    const item = await d.open("localhost", "offline", "archive").get("juliet", id);
    assert.equal(item?.stanza.getChildText("body"), "a < b & c");
    assert.equal(item?.stanza.attrs.from, "romeo@localhost");
    d.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("storage manager: per-store drivers and a clear error for unknown ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-sqlite-" });
  try {
    const m = new StorageManager({ dataPath: dir, storage: { cache: "memory" } });
    assert.equal(m.driverFor("cache"), "memory");
    assert.equal(m.driverFor("accounts"), "sqlite");
    await m.open("localhost", "accounts").set("u", 1);
    m.close();
    assert.throws(
      () => new StorageManager({ dataPath: dir, storage: "postgres" }),
      /storage option: unknown driver "postgres"; expected one of sqlite, internal, memory/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
