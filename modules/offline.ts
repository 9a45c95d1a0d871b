/**
 * Offline messages (XEP-0160): `chat` and `normal` messages for a user with
 * no available resource are stored (archive store `offline`, so they survive
 * a restart) and delivered, in the order they arrived, with an XEP-0203
 * `<delay/>` stamp, when the user next sends initial presence with a
 * non-negative priority. They leave storage only once written out to the
 * client's connection completely, so a connection (or a server) that dies
 * during delivery loses none. Option `offline_message_limit` (default 500) caps
 * a user's stored messages; past it the sender gets `resource-constraint`.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { Origin } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import type { Stanza } from "../core/xml/stanza.ts";

const DELAY_NS = "urn:xmpp:delay";
const CHATSTATES_NS = "http://jabber.org/protocol/chatstates";
/** Output waiting for the client past which delivery waits for it to read. */
const PACE = 128 * 1024;
/** Messages sent before delivery waits for them to be safe (stream management's queue is capped). */
const BATCH = 100;

export default function offline(module: Module) {
  const store = module.openStore(undefined, "archive");
  const limit = module.getOptionInteger("offline_message_limit", 500, { min: 1 });
  module.addFeature("msgoffline");

  module.hook(
    "message/offline/handle",
    async (event: { username: string; origin: Origin; stanza: Stanza }) => {
      const { username, origin, stanza } = event;
      const type = stanza.attrs.type ?? "normal";
      if (type !== "chat" && type !== "normal") return;
      // A chat state alone is stale by the time its recipient comes back (XEP-0160 §4).
      if (!stanza.getChild("body") && stanza.childWithNs(CHATSTATES_NS)) return true;
      if (await store.count(username) >= limit) {
        origin.send(
          stanza.errorReply("wait", "resource-constraint", "Offline message storage is full"),
        );
        return true;
      }
      const copy = stanza.clone();
      const stamp = new Date().toISOString();
      copy.tag("delay", { xmlns: DELAY_NS, from: module.host, stamp }).up();
      await store.append(username, null, copy, Date.now() / 1000, stanza.attrs.from ?? "");
      return true;
    },
  );

  /** Stored messages on their way to a client, by user: not sent twice meanwhile. */
  const inFlight = new Map<string, Set<string>>();
  /** The stanzas sent from storage: if their connection dies, storage still has them. */
  const replayed = new WeakSet<Stanza>();

  // Delivery runs on its own, not inside the handling of the client's presence:
  // the client's acknowledgements (stream management), which delivery may wait
  // for, are read only once that presence is handled.
  module.hook("message/offline/broadcast", ({ origin }: { origin: Session }) => {
    deliver(origin).catch((e) =>
      module.log.error("offline delivery failed: {error}", { error: e })
    );
    return true;
  });

  async function deliver(origin: Session) {
    const username = origin.username!;
    const items = await store.find(username);
    let busy = inFlight.get(username);
    if (!busy) inFlight.set(username, busy = new Set());
    const mine = busy;
    const release = (ids: string[]) => {
      for (const id of ids) mine.delete(id);
      if (mine.size === 0 && inFlight.get(username) === mine) inFlight.delete(username);
    };
    /**
     * Removes `ids` from storage once everything sent so far is safe: written
     * out, or acknowledged by the client under stream management. A
     * connection (or a server) that dies first leaves them stored.
     */
    const settle = async (ids: string[]) => {
      try {
        if (await origin.flush()) {
          await store.delete(username, { ids });
          return true;
        }
        return false;
      } catch (e) {
        module.log.error("offline messages not removed: {error}", { error: e });
        return false;
      } finally {
        release(ids);
      }
    };
    // Under stream management a batch is removed once the client acknowledged
    // it, before the next is sent (its queue is capped). Without it, "written
    // out" only means the kernel took the bytes, so nothing is removed before
    // everything was: a connection that dies midway leaves all of it stored.
    const acked = origin.filter !== undefined;
    let batch: string[] = [];
    for (const item of items) {
      if (origin.destroyed) break; // keep the rest for next time
      if (busy.has(item.id)) continue; // another resource is receiving it right now
      if (acked && batch.length >= BATCH) {
        const done = batch;
        batch = [];
        if (!await settle(done)) break;
      } else if (origin.backlog > PACE && !await origin.flush()) {
        break; // at the client's pace: the output cap is for clients that stop reading
      }
      replayed.add(item.stanza);
      origin.send(item.stanza);
      batch.push(item.id);
      busy.add(item.id);
    }
    if (batch.length) await settle(batch);
    else release([]);
  }

  // A stored message whose connection died is still stored: nothing to re-deliver.
  module.hook("delivery/failure", ({ stanza }: { stanza: Stanza }) => {
    if (replayed.has(stanza)) return true;
  }, 10);
}
