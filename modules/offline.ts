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
/** Output waiting for the client past which delivery waits for it to read. */
const PACE = 128 * 1024;

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

  module.hook("message/offline/broadcast", async ({ origin }: { origin: Session }) => {
    const username = origin.username!;
    const items = await store.find(username);
    let busy = inFlight.get(username);
    if (!busy) inFlight.set(username, busy = new Set());
    const sent: string[] = [];
    for (const item of items) {
      if (origin.destroyed) break; // keep the rest for next time
      if (busy.has(item.id)) continue; // another resource is receiving it right now
      // At the client's pace: the output cap is for clients that stop reading.
      if (origin.backlog > PACE && !await origin.flush()) break;
      replayed.add(item.stanza);
      origin.send(item.stanza);
      sent.push(item.id);
      busy.add(item.id);
    }
    if (sent.length === 0) return true;
    // Removed from storage only once written out completely: a connection that
    // dies first (or a crash) leaves them stored for the next time.
    origin.flush().then(async (written) => {
      if (written) await store.delete(username, { ids: sent });
    }).catch((e) => module.log.error("offline messages not removed: {error}", { error: e }))
      .finally(() => {
        for (const id of sent) busy.delete(id);
        if (busy.size === 0 && inFlight.get(username) === busy) inFlight.delete(username);
      });
    return true;
  });

  // A stored message whose connection died is still stored: nothing to re-deliver.
  module.hook("delivery/failure", ({ stanza }: { stanza: Stanza }) => {
    if (replayed.has(stanza)) return true;
  }, 10);
}
