/** One behavioural suite run against every storage driver. */
import assert from "node:assert/strict";
import { REMOVE, type StorageDriver, StorageError } from "../../../core/storage/types.ts";
import { message } from "../../../core/xml/stanza.ts";

export function driverSuite(
  name: string,
  make: (limit?: number) => Promise<{
    driver: StorageDriver;
    cleanup(): Promise<void>;
  }>,
) {
  const test = (title: string, fn: (d: StorageDriver) => Promise<void>, limit?: number) =>
    Deno.test(`${name}: ${title}`, async () => {
      const { driver, cleanup } = await make(limit);
      try {
        await fn(driver);
      } finally {
        driver.close();
        await cleanup();
      }
    });

  test("keyval get/set/delete, host-level data, users()", async (d) => {
    const s = d.open("localhost", "accounts", "keyval");
    assert.equal(await s.get("juliet"), null);
    await s.set("juliet", { password: "pw", n: [1, 2] });
    assert.deepEqual(await s.get("juliet"), { password: "pw", n: [1, 2] });
    await s.set(null, { host: true });
    assert.deepEqual(await s.get(null), { host: true });
    await s.set("romeo", { password: "x" });
    const users: string[] = [];
    for await (const u of s.users()) users.push(u);
    assert.deepEqual(users.sort(), ["juliet", "romeo"]);
    await s.set("juliet", null);
    assert.equal(await s.get("juliet"), null);
  });

  test("stores and hosts are separate", async (d) => {
    await d.open("a.example", "s", "keyval").set("u", 1);
    assert.equal(await d.open("b.example", "s", "keyval").get("u"), null);
    assert.equal(await d.open("a.example", "t", "keyval").get("u"), null);
  });

  test("map get/set/setKeys/getAll/getAllUsers/deleteAll", async (d) => {
    const m = d.open("localhost", "roster", "map");
    await m.set("juliet", "romeo@localhost", { subscription: "both" });
    await m.setKeys("juliet", {
      "nurse@localhost": { subscription: "to" },
      "romeo@localhost": REMOVE,
    });
    assert.equal(await m.get("juliet", "romeo@localhost"), null);
    assert.deepEqual(await m.get("juliet", "nurse@localhost"), { subscription: "to" });
    await m.set("romeo", "nurse@localhost", { subscription: "none" });
    assert.deepEqual(
      [...(await m.getAllUsers("nurse@localhost")).keys()].sort(),
      ["juliet", "romeo"],
    );
    assert.deepEqual([...(await m.getAll("juliet")).keys()], ["nurse@localhost"]);
    await m.deleteAll("nurse@localhost");
    assert.equal((await m.getAll("juliet")).size, 0);
  });

  test("archive keeps storage order, sub-second times, and pages by id", async (d) => {
    const a = d.open("localhost", "archive", "archive");
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      // Same timestamp for all: order must come from storage order, not time.
      ids.push(
        await a.append(
          "juliet",
          null,
          message({ to: "x@y" }, `m${i}`),
          1000.25,
          i % 2 ? "romeo@localhost" : "nurse@localhost",
        ),
      );
    }
    const all = await a.find("juliet");
    assert.deepEqual(all.map((i) => i.stanza.getChildText("body")), [
      "m0",
      "m1",
      "m2",
      "m3",
      "m4",
      "m5",
    ]);
    assert.equal(all[0].when, 1000.25);
    assert.deepEqual((await a.find("juliet", { after: ids[1], limit: 2 })).map((i) => i.id), [
      ids[2],
      ids[3],
    ]);
    assert.deepEqual(
      (await a.find("juliet", { before: ids[4], reverse: true, limit: 2 })).map((i) => i.id),
      [ids[3], ids[2]],
    );
    assert.deepEqual((await a.find("juliet", { with: "romeo@localhost" })).map((i) => i.id), [
      ids[1],
      ids[3],
      ids[5],
    ]);
    assert.equal(await a.count("juliet", { with: "nurse@localhost" }), 3);
    assert.deepEqual((await a.find("juliet", { ids: [ids[5], ids[0]] })).map((i) => i.id), [
      ids[0],
      ids[5],
    ]);
    await assert.rejects(() => a.find("juliet", { after: "nope" }), StorageError);
    const item = await a.get("juliet", ids[2]);
    assert.equal(item?.stanza.getChildText("body"), "m2");
    assert.equal(await a.delete("juliet", { truncate: 2 }), 4);
    assert.deepEqual((await a.find("juliet")).map((i) => i.id), [ids[4], ids[5]]);
    assert.equal(await a.delete("juliet"), 2);
  });

  test("archive time range and replace by key", async (d) => {
    const a = d.open("localhost", "archive", "archive");
    await a.append("u", "k1", message({}, "one"), 10);
    await a.append("u", "k2", message({}, "two"), 20);
    await a.append("u", "k3", message({}, "three"), 30);
    assert.deepEqual((await a.find("u", { start: 15, end: 30 })).map((i) => i.id), ["k2", "k3"]);
    await a.append("u", "k1", message({}, "uno"), 40);
    const items = await a.find("u");
    assert.deepEqual(items.map((i) => i.id), ["k2", "k3", "k1"]);
    assert.equal(items[2].stanza.getChildText("body"), "uno");
  });

  test("archive quota-limit", async (d) => {
    const a = d.open("localhost", "offline", "archive");
    await a.append("u", null, message({}, "1"));
    await a.append("u", null, message({}, "2"));
    await assert.rejects(() => a.append("u", null, message({}, "3")), /archive is full/);
  }, 2);

  test("purge removes one user's data only", async (d) => {
    await d.open("localhost", "a", "keyval").set("juliet", 1);
    await d.open("localhost", "a", "keyval").set("romeo", 1);
    await d.open("localhost", "m", "map").set("juliet", "k", 1);
    await d.open("localhost", "ar", "archive").append("juliet", null, message({}, "x"));
    await d.purge("localhost", "juliet");
    assert.equal(await d.open("localhost", "a", "keyval").get("juliet"), null);
    assert.equal(await d.open("localhost", "a", "keyval").get("romeo"), 1);
    assert.equal(await d.open("localhost", "m", "map").get("juliet", "k"), null);
    assert.equal(await d.open("localhost", "ar", "archive").count("juliet"), 0);
  });
}
