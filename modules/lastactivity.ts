/**
 * Last Activity (XEP-0012) for users: how long ago a user was last online,
 * with the status of their last unavailable presence. Answered to the user
 * and to contacts subscribed to the user's presence; others get
 * `forbidden`. Stored in the keyval store `lastactivity` when a user's
 * last session ends. (The server's own uptime is the uptime module's.)
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
  const server = module.server;
  const host = module.host;
  const store = module.openStore<LastActivity>("lastactivity", "keyval");

  // Remember the status a user leaves with.
  module.hook("pre-presence/bare", ({ origin, stanza }: StanzaEvent<Session>) => {
    if (stanza.attrs.to === undefined && stanza.attrs.type === "unavailable") {
      (origin.ext ??= {}).lastStatus = stanza.getChildText("status");
    }
  }, 10);

  module.hook("resource-unbind", async ({ session }) => {
    if (server.sessions.user(session.username!, host)) return; // not the last one
    const status = session.ext?.lastStatus as string | undefined;
    await store.set(session.username!, { time: Date.now(), ...(status ? { status } : {}) });
  });

  module.hook(`iq-get/bare/${NS}:query`, async ({ origin, stanza }: StanzaEvent) => {
    const to = stanza.attrs.to;
    const self = to === undefined;
    const username = self ? origin.username! : to.slice(0, to.indexOf("@"));
    const asker = bare(stanza.attrs.from ?? "");
    const allowed = self || asker === `${username}@${host}` ||
      await server.rosters.isContactSubscribed(username, host, asker);
    if (!allowed) {
      origin.send(stanza.errorReply("auth", "forbidden"));
      return true;
    }
    const reply = stanza.reply();
    const online = [...server.sessions.user(username, host)?.sessions.values() ?? []]
      .some((s) => s.presence);
    if (online) {
      reply.tag("query", { xmlns: NS, seconds: "0" });
    } else {
      const last = await store.get(username);
      if (!last) {
        origin.send(stanza.errorReply("cancel", "item-not-found"));
        return true;
      }
      const seconds = String(Math.max(0, Math.floor((Date.now() - last.time) / 1000)));
      reply.tag("query", { xmlns: NS, seconds }).text(last.status);
    }
    origin.send(reply);
    return true;
  });
}
