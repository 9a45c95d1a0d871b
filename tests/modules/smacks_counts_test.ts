/**
 * XEP-0198 counts wrap at 2^32. Sending four billion stanzas is out of reach
 * in a test, so the counters start near the wrap, on a stand-in session that
 * records what would be written.
 */
import assert from "node:assert/strict";
import { StreamManagement } from "../../modules/smacks.ts";
import type { Session } from "../../core/session.ts";
import { message, presence } from "../../core/xml/stanza.ts";

function standIn() {
  const written: string[] = [];
  const session = {
    destroyed: false,
    hibernating: false,
    conn: { write: (xml: string) => (written.push(xml), true) },
  } as unknown as Session;
  const sm = new StreamManagement(session, {
    maxQueue: 100,
    maxQueueBytes: 1 << 30,
    maxUnacked: 1000,
  }, () => {});
  return { sm, written };
}

Deno.test("smacks counts: the handled count wraps to 0 after 2^32 - 1", () => {
  const { sm } = standIn();
  sm.handled = 2 ** 32 - 1;
  sm.received(presence());
  assert.equal(sm.handled, 0);
  sm.received(message({ to: "a@b" }, "x"));
  assert.equal(sm.handled, 1);
});

Deno.test("smacks counts: an ack across the wrap drops exactly the stanzas it covers", () => {
  const { sm, written } = standIn();
  sm.acked = 2 ** 32 - 2; // 2^32 - 2 stanzas sent and acknowledged before
  for (let i = 0; i < 4; i++) sm.send(message({ id: `m${i}` }, "x"), `<m${i}/>`);
  assert.equal(written.length, 4);
  // The client has handled up to sequence number 2^32 + 1, i.e. h = 1 on the wire.
  assert.ok(sm.acknowledge(1));
  assert.deepEqual(sm.queue.map((s) => s.attrs.id), ["m3"]);
  assert.equal(sm.sent % 2 ** 32, 2);
  // An h beyond what was sent is refused, and changes nothing.
  assert.equal(sm.acknowledge(5), false);
  assert.deepEqual(sm.queue.map((s) => s.attrs.id), ["m3"]);
  assert.ok(sm.acknowledge(2));
  assert.equal(sm.queue.length, 0);
});
