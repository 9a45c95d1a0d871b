/**
 * Last Activity (XEP-0012) for users: how long ago a user was last
 * available, with the status of the presence they left with. Answered to
 * the user and to contacts subscribed to the user's presence; others get
 * `forbidden`. Recorded in the keyval store `lastactivity` when the user's
 * last available resource goes unavailable: by unavailable presence (its
 * status kept) or by its session ending. While a resource is available the
 * answer is 0 seconds (XEP-0012 §4); while the user is connected but not
 * available, the time since the record (0 seconds when there is none, as
 * Prosody answers). (The server's own uptime is the uptime module's.)
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { bare } from "../core/jid.ts";

const NS = "jabber:iq:last";

interface LastActivity {
  time: number;
  status?: string;
}

export default function lastactivity(module: Module) {
  const host = module.host;
  const store = module.openStore<LastActivity>("lastactivity", "keyval");

  /** Whether a resource of the user other than `session` is available. */
  function othersAvailable(username: string, session?: Session): boolean {
    return module.availableResources(username).some((s) => s !== session);
  }

  function record(username: string, status?: string) {
    return store.set(username, { time: Date.now(), ...(status ? { status } : {}) });
  }

  // The last available resource says goodbye (before the presence module
  // broadcasts it and forgets the resource's presence).
  module.hook("pre-presence/bare", async ({ origin, stanza }: StanzaEvent<Session>) => {
    if (stanza.attrs.to !== undefined || stanza.attrs.type !== "unavailable") return;
    if (origin.type !== "c2s" || !origin.presence) return;
    if (othersAvailable(origin.username!, origin)) return;
    await record(origin.username!, stanza.getChildText("status"));
  }, 10);

  // The last available resource's session ends (runs before the presence
  // module's handler, while `presence` still says it was available).
  module.hook("resource-unbind", async ({ session }) => {
    if (!session.presence || othersAvailable(session.username!, session)) return;
    await record(session.username!);
  }, 1);

  module.hook(`iq-get/bare/${NS}:query`, async ({ origin, stanza, to_user }: StanzaEvent) => {
    const self = stanza.attrs.to === undefined;
    const username = to_user!;
    const asker = bare(stanza.attrs.from ?? "");
    const allowed = self || asker === `${username}@${host}` ||
      await module.rosters.isContactSubscribed(username, host, asker);
    if (!allowed) {
      origin.send(stanza.errorReply("auth", "forbidden"));
      return true;
    }
    const reply = stanza.reply();
    if (othersAvailable(username)) {
      reply.tag("query", { xmlns: NS, seconds: "0" });
    } else {
      const last = await store.get(username);
      if (last) {
        const seconds = String(Math.max(0, Math.floor((Date.now() - last.time) / 1000)));
        reply.tag("query", { xmlns: NS, seconds }).text(last.status);
      } else if (module.isOnline(username)) {
        reply.tag("query", { xmlns: NS, seconds: "0" }); // connected, never seen leaving
      } else {
        origin.send(stanza.errorReply("cancel", "item-not-found"));
        return true;
      }
    }
    origin.send(reply);
    return true;
  });
}
