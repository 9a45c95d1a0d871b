/**
 * The behavioural suite every storage driver must pass; each driver's test
 * file runs it with a factory.
 *
 * @example
 * ```ts
 * driverSuite("memory", (opts) => Promise.resolve({ driver: new MemoryDriver(opts), cleanup: async () => {} }));
 * ```
 * @module
 */
import assert from "node:assert/strict";
import {
  type ArchiveStore,
  REMOVE,
  type StorageDriver,
  StorageError,
} from "../../../core/storage/types.ts";
import { message, Stanza } from "../../../core/xml/stanza.ts";

/** Makes a fresh, empty driver; `cleanup` runs after `driver.close()`. */
export type DriverFactory = (opts: { archiveItemLimit?: number }) => Promise<{
  driver: StorageDriver;
  cleanup(): Promise<void>;
}>;

const HOST = "example.com";

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const x of it) out.push(x);
  return out.sort();
}

const bodies = (items: { stanza: Stanza }[]) => items.map((i) => i.stanza.getChildText("body"));

/** Appends messages m0..m(n-1) to juliet's archive; odd ones with romeo, even with nurse. */
async function fill(a: ArchiveStore, n: number, when = (i: number) => 1000 + i): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const peer = i % 2 ? "romeo@example.com" : "nurse@example.com";
    ids.push(await a.append("juliet", null, message({ to: peer }, `m${i}`), when(i), peer));
  }
  return ids;
}

async function rejectsWith(p: Promise<unknown>, condition: string): Promise<void> {
  await assert.rejects(p, (e) => e instanceof StorageError && e.condition === condition);
}

/**
 * Registers the suite's tests under `name`.
 *
 * @example
 * ```ts
 * driverSuite("sqlite", sqliteFactory);
 * ```
 */
export function driverSuite(name: string, make: DriverFactory): void {
  const test = (
    title: string,
    fn: (d: StorageDriver) => Promise<void>,
    opts: { archiveItemLimit?: number } = {},
  ) =>
    Deno.test(`${name}: ${title}`, async () => {
      const { driver, cleanup } = await make(opts);
      try {
        await fn(driver);
      } finally {
        driver.close();
        await cleanup();
      }
    });

  // --- keyval ---------------------------------------------------------------

  test("keyval: get, set, delete with null", async (d) => {
    const s = d.open<{ password: string; n: number[] }>(HOST, "accounts", "keyval");
    assert.equal(await s.get("juliet"), null);
    await s.set("juliet", { password: "pw", n: [1, 2] });
    assert.deepEqual(await s.get("juliet"), { password: "pw", n: [1, 2] });
    await s.set("juliet", { password: "new", n: [] });
    assert.deepEqual(await s.get("juliet"), { password: "new", n: [] });
    await s.set("juliet", null);
    assert.equal(await s.get("juliet"), null);
  });

  test("keyval: values are copies, both ways", async (d) => {
    const s = d.open<{ list: number[] }>(HOST, "s", "keyval");
    const value = { list: [1] };
    await s.set("juliet", value);
    value.list.push(2);
    const got = await s.get("juliet");
    assert.deepEqual(got, { list: [1] });
    got!.list.push(3);
    assert.deepEqual(await s.get("juliet"), { list: [1] });
  });

  test("keyval: host-level data (user null) is kept apart and not listed", async (d) => {
    const s = d.open(HOST, "s", "keyval");
    await s.set(null, { host: true });
    await s.set("juliet", 1);
    await s.set("romeo", "two");
    assert.deepEqual(await s.get(null), { host: true });
    assert.deepEqual(await collect(s.users()), ["juliet", "romeo"]);
    await s.set("romeo", null);
    assert.deepEqual(await collect(s.users()), ["juliet"]);
  });

  test("keyval: a value JSON cannot hold throws a StorageError", async (d) => {
    const s = d.open(HOST, "s", "keyval");
    await rejectsWith(s.set("juliet", { n: 1n }), "internal-server-error");
    await rejectsWith(s.set("juliet", () => 1), "internal-server-error");
    assert.equal(await s.get("juliet"), null);
  });

  test("hosts, stores and store types do not see each other's data", async (d) => {
    await d.open("a.example", "s", "keyval").set("juliet", "a");
    assert.equal(await d.open("b.example", "s", "keyval").get("juliet"), null);
    assert.equal(await d.open("a.example", "t", "keyval").get("juliet"), null);
    assert.equal(await d.open("a.example", "s", "map").get("juliet", "s"), null);
    assert.deepEqual(await collect(d.open("b.example", "s", "keyval").users()), []);
    await d.open("a.example", "m", "map").set("juliet", "k", 1);
    assert.deepEqual(await d.open("b.example", "m", "map").getAll("k"), new Map());
    await d.open("a.example", "log", "archive").append("juliet", "id1", message({}, "x"));
    assert.equal(await d.open("b.example", "log", "archive").get("juliet", "id1"), null);
    assert.equal(await d.open("b.example", "log", "archive").count("juliet"), 0);
  });

  // --- map ------------------------------------------------------------------

  test("map: get, set, delete with null", async (d) => {
    const m = d.open<{ subscription: string }>(HOST, "roster", "map");
    assert.equal(await m.get("juliet", "romeo@example.com"), null);
    await m.set("juliet", "romeo@example.com", { subscription: "both" });
    assert.deepEqual(await m.get("juliet", "romeo@example.com"), { subscription: "both" });
    assert.equal(await m.get("romeo", "romeo@example.com"), null);
    await m.set("juliet", "romeo@example.com", null);
    assert.equal(await m.get("juliet", "romeo@example.com"), null);
  });

  test("map: setKeys sets and removes several keys", async (d) => {
    const m = d.open<number>(HOST, "m", "map");
    await m.setKeys("juliet", { a: 1, b: 2 });
    await m.setKeys("juliet", { a: REMOVE, b: 20, c: 3 });
    assert.equal(await m.get("juliet", "a"), null);
    assert.equal(await m.get("juliet", "b"), 20);
    assert.equal(await m.get("juliet", "c"), 3);
  });

  test("map: setKeys is all or nothing", async (d) => {
    const m = d.open<unknown>(HOST, "m", "map");
    await m.setKeys("juliet", { a: 1, b: 2 });
    await rejectsWith(m.setKeys("juliet", { a: REMOVE, b: 10n, c: 3 }), "internal-server-error");
    assert.equal(await m.get("juliet", "a"), 1);
    assert.equal(await m.get("juliet", "b"), 2);
    assert.equal(await m.get("juliet", "c"), null);
  });

  test("map: getAll and deleteAll work across users", async (d) => {
    const m = d.open<string>(HOST, "m", "map");
    await m.set("juliet", "k", "j");
    await m.set("romeo", "k", "r");
    await m.set("romeo", "other", "x");
    await m.set(null, "k", "host");
    assert.deepEqual(await m.getAll("k"), new Map([["juliet", "j"], ["romeo", "r"]]));
    assert.deepEqual(await m.getAll("missing"), new Map());
    await m.deleteAll("k");
    assert.deepEqual(await m.getAll("k"), new Map());
    assert.equal(await m.get(null, "k"), null);
    assert.equal(await m.get("romeo", "other"), "x");
  });

  // --- archive --------------------------------------------------------------

  test("archive: keeps the stanza, sub-second time and with", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    const s = message({ to: "romeo@example.com", type: "chat", id: "m1" }, 'a < b & "c" ☃')
      .tag("x", { xmlns: "urn:example" }).text("t").tag("y").up().up();
    const id = await a.append("juliet", null, s, 1700000000.123456, "romeo@example.com");
    const item = await a.get("juliet", id);
    assert.ok(item);
    assert.equal(item.id, id);
    assert.equal(item.when, 1700000000.123456);
    assert.equal(item.with, "romeo@example.com");
    assert.equal(item.stanza.toString(), s.toString());
    assert.ok(item.stanza instanceof Stanza);
    assert.equal(await a.get("juliet", "nope"), null);
  });

  test("archive: defaults when to now and with to empty", async (d) => {
    const a = d.open(HOST, "offline", "archive");
    const before = Date.now() / 1000;
    const id = await a.append("juliet", null, message({}, "hi"));
    const item = await a.get("juliet", id);
    assert.ok(item && item.when >= before - 0.001 && item.when <= Date.now() / 1000 + 0.001);
    assert.equal(item.with, "");
  });

  test("archive: generated ids are unique UUIDv7s", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    const ids = await fill(a, 20);
    assert.equal(new Set(ids).size, 20);
    for (const id of ids) {
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-/);
    }
  });

  test("archive: order is the order of storage, not of timestamps", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    await fill(a, 3, () => 5000); // all at the same time
    await fill(a, 3, (i) => 4000 - i); // going back in time
    assert.deepEqual(bodies(await a.find("juliet")), ["m0", "m1", "m2", "m0", "m1", "m2"]);
    const whens = (await a.find("juliet")).map((i) => i.when);
    assert.deepEqual(whens, [5000, 5000, 5000, 4000, 3999, 3998]);
    assert.deepEqual(bodies(await a.find("juliet", { reverse: true, limit: 2 })), ["m2", "m1"]);
  });

  test("archive: limit and reverse", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    await fill(a, 6);
    assert.deepEqual(bodies(await a.find("juliet", { limit: 2 })), ["m0", "m1"]);
    // The newest N, newest first.
    assert.deepEqual(bodies(await a.find("juliet", { limit: 2, reverse: true })), ["m5", "m4"]);
    assert.deepEqual(bodies(await a.find("juliet", { reverse: true })), [
      "m5",
      "m4",
      "m3",
      "m2",
      "m1",
      "m0",
    ]);
    assert.deepEqual(await a.find("juliet", { limit: 0 }), []);
    assert.equal((await a.find("juliet", { limit: 100 })).length, 6);
  });

  test("archive: pages forwards with after and backwards with before", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    const ids = await fill(a, 7);
    // Forwards, as RSM <after/>.
    const pages: string[][] = [];
    let after: string | undefined;
    for (;;) {
      const page = await a.find("juliet", { after, limit: 3 });
      if (!page.length) break;
      pages.push(bodies(page) as string[]);
      after = page[page.length - 1].id;
    }
    assert.deepEqual(pages, [["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6"]]);
    // Backwards, as MAM's usual <before/> with reverse.
    assert.deepEqual(bodies(await a.find("juliet", { before: ids[5], limit: 2, reverse: true })), [
      "m4",
      "m3",
    ]);
    assert.deepEqual(bodies(await a.find("juliet", { before: ids[2] })), ["m0", "m1"]);
    // Both anchors: strictly between.
    assert.deepEqual(bodies(await a.find("juliet", { after: ids[1], before: ids[4] })), [
      "m2",
      "m3",
    ]);
    assert.deepEqual(await a.find("juliet", { after: ids[6] }), []);
  });

  test("archive: an unknown anchor is item-not-found", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    const ids = await fill(a, 2);
    await rejectsWith(a.find("juliet", { after: "nope" }), "item-not-found");
    await rejectsWith(a.find("juliet", { before: "nope" }), "item-not-found");
    // Another user's id is not an anchor in this archive.
    await rejectsWith(a.find("romeo", { after: ids[0] }), "item-not-found");
    await rejectsWith(a.delete("juliet", { before: "nope" }), "item-not-found");
    assert.equal(await a.count("juliet"), 2);
  });

  test("archive: filters by with, start and end (inclusive), key and ids", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    const ids = await fill(a, 6, (i) => 1000 + i / 10); // 1000.0 … 1000.5
    assert.deepEqual(bodies(await a.find("juliet", { with: "romeo@example.com" })), [
      "m1",
      "m3",
      "m5",
    ]);
    assert.deepEqual(bodies(await a.find("juliet", { start: 1000.2, end: 1000.4 })), [
      "m2",
      "m3",
      "m4",
    ]);
    assert.deepEqual(bodies(await a.find("juliet", { start: 1000.35 })), ["m4", "m5"]);
    assert.deepEqual(bodies(await a.find("juliet", { end: 1000.1 })), ["m0", "m1"]);
    assert.deepEqual(bodies(await a.find("juliet", { key: ids[3] })), ["m3"]);
    assert.deepEqual(bodies(await a.find("juliet", { ids: [ids[4], ids[0], "nope"] })), [
      "m0",
      "m4",
    ]);
    assert.deepEqual(await a.find("juliet", { ids: [] }), []);
    assert.deepEqual(await a.find("juliet", { with: "nobody" }), []);
  });

  test("archive: filters combine with paging", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    const ids = await fill(a, 10);
    const romeo = "romeo@example.com";
    // Romeo's items are m1 m3 m5 m7 m9.
    assert.deepEqual(bodies(await a.find("juliet", { with: romeo, limit: 2, reverse: true })), [
      "m9",
      "m7",
    ]);
    assert.deepEqual(
      bodies(await a.find("juliet", { with: romeo, before: ids[7], limit: 2, reverse: true })),
      ["m5", "m3"],
    );
    // An anchor that does not match the filter still anchors.
    assert.deepEqual(bodies(await a.find("juliet", { with: romeo, after: ids[4], limit: 2 })), [
      "m5",
      "m7",
    ]);
    assert.deepEqual(
      bodies(await a.find("juliet", { with: romeo, start: 1003, end: 1008, after: ids[3] })),
      ["m5", "m7"],
    );
  });

  test("archive: count matches the filters and ignores paging", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    const ids = await fill(a, 6);
    assert.equal(await a.count("juliet"), 6);
    assert.equal(await a.count("juliet", { with: "romeo@example.com" }), 3);
    assert.equal(await a.count("juliet", { start: 1002, end: 1003 }), 2);
    assert.equal(await a.count("juliet", { limit: 1, after: ids[4] }), 6);
    assert.equal(await a.count("romeo"), 0);
  });

  test("archive: append with an existing key replaces the item and moves it last", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    const ids = await fill(a, 3);
    assert.equal(await a.append("juliet", ids[0], message({}, "new"), 2000, "x@y"), ids[0]);
    assert.deepEqual(bodies(await a.find("juliet")), ["m1", "m2", "new"]);
    const item = await a.get("juliet", ids[0]);
    assert.equal(item?.when, 2000);
    assert.equal(item?.with, "x@y");
    // A chosen key that does not exist yet is simply used.
    assert.equal(await a.append("juliet", "mine", message({}, "chosen")), "mine");
    assert.equal(await a.count("juliet"), 4);
  });

  test("archive: set replaces an item in place", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    const ids = await fill(a, 3);
    await a.set("juliet", ids[1], message({}, "retracted"));
    assert.deepEqual(bodies(await a.find("juliet")), ["m0", "retracted", "m2"]);
    const kept = await a.get("juliet", ids[1]);
    assert.equal(kept?.when, 1001);
    assert.equal(kept?.with, "romeo@example.com");
    await a.set("juliet", ids[1], message({}, "again"), 3000.5, "other@example.com");
    const changed = await a.get("juliet", ids[1]);
    assert.equal(changed?.when, 3000.5);
    assert.equal(changed?.with, "other@example.com");
    await rejectsWith(a.set("juliet", "nope", message({}, "x")), "item-not-found");
  });

  test("archive: returned stanzas are copies", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    const s = message({}, "original");
    const id = await a.append("juliet", null, s);
    s.attrs.to = "changed";
    const item = await a.get("juliet", id);
    item!.stanza.attrs.from = "changed";
    assert.equal(
      (await a.get("juliet", id))!.stanza.toString(),
      "<message><body>original</body></message>",
    );
  });

  test("archive: delete everything, or what a query matches", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    const ids = await fill(a, 8);
    assert.equal(await a.delete("juliet", { with: "romeo@example.com", start: 1003 }), 3);
    assert.deepEqual(bodies(await a.find("juliet")), ["m0", "m1", "m2", "m4", "m6"]);
    assert.equal(await a.delete("juliet", { before: ids[2] }), 2);
    assert.equal(await a.delete("juliet", { key: ids[4] }), 1);
    assert.equal(await a.delete("juliet", { ids: [ids[2], "nope"] }), 1);
    assert.deepEqual(bodies(await a.find("juliet")), ["m6"]);
    assert.equal(await a.delete("juliet", { with: "nobody" }), 0);
    assert.equal(await a.delete("juliet"), 1);
    assert.equal(await a.count("juliet"), 0);
    assert.equal(await a.delete("juliet"), 0);
  });

  test("archive: delete with truncate keeps the newest (or, reversed, the oldest) N", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    await fill(a, 6);
    assert.equal(await a.delete("juliet", { truncate: 4 }), 2);
    assert.deepEqual(bodies(await a.find("juliet")), ["m2", "m3", "m4", "m5"]);
    assert.equal(await a.delete("juliet", { truncate: 3, reverse: true }), 1);
    assert.deepEqual(bodies(await a.find("juliet")), ["m2", "m3", "m4"]);
    assert.equal(await a.delete("juliet", { truncate: 10 }), 0);
    // Within a filter: keep Romeo's newest one; others untouched.
    await fill(a, 4); // m0..m3 again: Romeo has m3(old), m1, m3
    assert.equal(await a.delete("juliet", { with: "romeo@example.com", truncate: 1 }), 2);
    assert.deepEqual(bodies(await a.find("juliet")), ["m2", "m4", "m0", "m2", "m3"]);
    assert.equal(await a.delete("juliet", { truncate: 0 }), 5);
  });

  test("archive: users() lists users with items", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    await a.append("juliet", null, message({}, "1"));
    await a.append("romeo", null, message({}, "2"));
    await a.append(null, null, message({}, "host"));
    assert.deepEqual(await collect(a.users()), ["juliet", "romeo"]);
    await a.delete("romeo");
    assert.deepEqual(await collect(a.users()), ["juliet"]);
  });

  test("archive: host-level archive (user null) is separate", async (d) => {
    const a = d.open(HOST, "muc_log", "archive");
    const id = await a.append(null, null, message({}, "room"), 1, "message<groupchat");
    await a.append("juliet", null, message({}, "user"));
    assert.deepEqual(bodies(await a.find(null)), ["room"]);
    assert.equal((await a.get(null, id))?.with, "message<groupchat");
    assert.equal(await a.get("juliet", id), null);
  });

  test("archive: caps", (d) => {
    const caps = d.open(HOST, "archive", "archive").caps;
    assert.equal(caps.total, true);
    assert.equal(caps.truncate, true);
    assert.equal(caps.fullIdRange, true);
    assert.equal(caps.ids, true);
    assert.equal(caps.quota, Infinity);
    return Promise.resolve();
  });

  test("archive: over the item limit, append throws quota-limit", async (d) => {
    const a = d.open(HOST, "archive", "archive");
    assert.equal(a.caps.quota, 3);
    const ids = await fill(a, 3);
    await rejectsWith(a.append("juliet", null, message({}, "full")), "quota-limit");
    assert.equal(await a.count("juliet"), 3);
    // Replacing an item does not grow the archive, so it is allowed.
    await a.append("juliet", ids[0], message({}, "replaced"));
    assert.deepEqual(bodies(await a.find("juliet")), ["m1", "m2", "replaced"]);
    // The limit is per user.
    await a.append("romeo", null, message({}, "fine"));
    // Room again after a delete.
    await a.delete("juliet", { truncate: 2 });
    await a.append("juliet", null, message({}, "fits"));
    assert.equal(await a.count("juliet"), 3);
  }, { archiveItemLimit: 3 });

  test("archive: expire deletes the old items of every user, a batch at a time", async (d) => {
    const a = d.open(HOST, "mam", "archive");
    const other = d.open(HOST, "other", "archive");
    // Stored out of time order: expiry goes by `when`, not by storage order.
    await a.append("juliet", "j3", message({}, "j3"), 30);
    await a.append("romeo", "r1", message({}, "r1"), 10);
    await a.append("juliet", "j1", message({}, "j1"), 15);
    await a.append("romeo", "r5", message({}, "r5"), 50);
    await a.append(null, "h2", message({}, "h2"), 20);
    await other.append("juliet", "o1", message({}, "o1"), 1);
    const left = async () =>
      (await Promise.all([a.find("juliet"), a.find("romeo"), a.find(null)])).flat().length;
    // Older than 40: r1, j1, h2, j3 — two per batch.
    assert.equal(await a.expire(40, 2), 2);
    assert.equal(await left(), 3);
    assert.equal(await a.expire(40, 2), 2);
    assert.equal(await a.expire(40, 2), 0);
    assert.deepEqual(bodies(await a.find("juliet")), []);
    assert.deepEqual(bodies(await a.find(null)), []);
    assert.deepEqual(bodies(await a.find("romeo")), ["r5"]);
    // Another store of the same host is untouched.
    assert.deepEqual(bodies(await other.find("juliet")), ["o1"]);
  });

  test("archive: expire in batches of one reaches every user's old items", async (d) => {
    const a = d.open(HOST, "mam", "archive");
    for (const user of ["ann", "bob", "cat"]) {
      for (let i = 0; i < 3; i++) await a.append(user, `${user}${i}`, message({}, "x"), i);
    }
    await a.append("bob", "new", message({}, "new"), 100);
    let n = 0;
    for (let round = 0; round < 4; round++) {
      n += await a.expire(2, 1);
      // Old items may come in meanwhile, also for a user a batch has passed.
      if (round === 1) await a.append("ann", "late", message({}, "late"), 0.5);
    }
    for (let more; (more = await a.expire(2, 1)) > 0;) n += more;
    assert.equal(n, 7); // 0 and 1 of each user, and the late one
    assert.deepEqual((await a.find("ann")).map((i) => i.id), ["ann2"]);
    assert.deepEqual((await a.find("bob")).map((i) => i.id), ["bob2", "new"]);
    assert.deepEqual((await a.find("cat")).map((i) => i.id), ["cat2"]);
  });

  // --- purge ----------------------------------------------------------------

  test("purge removes every store of one user on one host, nothing else", async (d) => {
    const put = async (host: string, user: string | null) => {
      await d.open(host, "accounts", "keyval").set(user, { v: 1 });
      await d.open(host, "roster", "map").set(user, "k", { v: 2 });
      await d.open(host, "archive", "archive").append(user, "id", message({}, "x"));
    };
    const has = async (host: string, user: string | null) => [
      await d.open(host, "accounts", "keyval").get(user) !== null,
      await d.open(host, "roster", "map").get(user, "k") !== null,
      await d.open(host, "archive", "archive").get(user, "id") !== null,
    ];
    await put(HOST, "juliet");
    await put(HOST, "romeo");
    await put(HOST, null);
    await put("other.example", "juliet");
    await d.purge(HOST, "juliet");
    assert.deepEqual(await has(HOST, "juliet"), [false, false, false]);
    assert.deepEqual(await has(HOST, "romeo"), [true, true, true]);
    assert.deepEqual(await has(HOST, null), [true, true, true]);
    assert.deepEqual(await has("other.example", "juliet"), [true, true, true]);
  });
}
