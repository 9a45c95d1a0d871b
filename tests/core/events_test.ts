import assert from "node:assert/strict";
import { EventBus } from "../../core/events.ts";

Deno.test("handlers run by priority, then registration order", () => {
  const bus = new EventBus();
  const calls: string[] = [];
  bus.on("e", () => void calls.push("a0"));
  bus.on("e", () => void calls.push("b10"), 10);
  bus.on("e", () => void calls.push("c0"));
  bus.on("e", () => void calls.push("d-1"), -1);
  bus.on("e", () => void calls.push("e10"), 10);
  assert.equal(bus.fire("e", {}), undefined);
  assert.deepEqual(calls, ["b10", "e10", "a0", "c0", "d-1"]);
});

Deno.test("the first non-undefined result stops the event", () => {
  const bus = new EventBus();
  const calls: string[] = [];
  bus.on("e", () => {
    calls.push("first");
    return false; // false stops too (a veto)
  }, 1);
  bus.on("e", () => void calls.push("second"));
  assert.equal(bus.fire("e", {}), false);
  assert.deepEqual(calls, ["first"]);
});

Deno.test("a synchronous dispatch returns synchronously", () => {
  const bus = new EventBus();
  bus.on("e", () => undefined);
  bus.on("e", () => 42);
  const r = bus.fire("e", {});
  assert.equal(r, 42); // not a promise
});

Deno.test("an async handler is awaited before the next one runs", async () => {
  const bus = new EventBus();
  const calls: string[] = [];
  bus.on("e", async () => {
    await new Promise((r) => setTimeout(r, 10));
    calls.push("slow");
  }, 2);
  bus.on("e", () => {
    calls.push("after");
    return "done";
  }, 1);
  bus.on("e", () => void calls.push("never"));
  const r = bus.fire("e", {});
  assert.ok(r instanceof Promise);
  assert.equal(await r, "done");
  assert.deepEqual(calls, ["slow", "after"]);
});

Deno.test("adding a handler twice only changes its priority; off removes it", () => {
  const bus = new EventBus();
  const calls: string[] = [];
  const a = () => void calls.push("a");
  const b = () => void calls.push("b");
  bus.on("e", a, 0);
  bus.on("e", b, 5);
  bus.on("e", a, 10);
  bus.fire("e", {});
  assert.deepEqual(calls, ["a", "b"]);
  bus.off("e", a);
  calls.length = 0;
  bus.fire("e", {});
  assert.deepEqual(calls, ["b"]);
  bus.off("e", b);
  assert.equal(bus.has("e"), false);
});

Deno.test("handlers added during a dispatch do not run in that dispatch", () => {
  const bus = new EventBus();
  const calls: string[] = [];
  bus.on("e", () => {
    calls.push("a");
    bus.on("e", () => void calls.push("late"), -5);
  });
  bus.fire("e", {});
  assert.deepEqual(calls, ["a"]);
});

Deno.test("an exception in a handler propagates to the firer", () => {
  const bus = new EventBus();
  bus.on("e", () => {
    throw new Error("boom");
  });
  assert.throws(() => bus.fire("e", {}), /boom/);
});
