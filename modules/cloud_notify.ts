/**
 * Push notifications (XEP-0357, `urn:xmpp:push:0`), as Prosody's
 * mod_cloud_notify: a client (an iOS or Android app) registers its app
 * server's pubsub node with `<enable jid='push.example.com' node='…'/>`
 * (with publish options such as the app server's secret); when a message
 * arrives that none of the user's connected clients will get at once — the
 * user is offline, or the session that registered is hibernating (stream
 * management) — the server publishes a notification to that node, so the
 * app server can wake the app. `<disable/>` removes registrations; so does
 * the app server, by answering a notification with an error.
 *
 * The notification carries the XEP-0357 summary form: `message-count`
 * (messages since the user was last online) and `last-message-sender`; the
 * body only with `push_notification_with_body` (false), the sender unless
 * `push_notification_with_sender` is false. At most `push_max_devices` (5)
 * registrations per account; the oldest goes.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { element, iq, type Stanza } from "../core/xml/stanza.ts";
import { bare, prep } from "../core/jid.ts";
import { parseXml } from "../core/xml/parser.ts";
import { DATAFORM_NS, readForm } from "../core/xml/dataform.ts";
import { isImportant } from "./csi.ts";

const NS = "urn:xmpp:push:0";
const PUBSUB_NS = "http://jabber.org/protocol/pubsub";
const PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options";

/** One app server node a user registered. */
interface Registration {
  jid: string;
  node: string;
  /** The publish-options form, as XML, sent along with each notification. */
  options?: string;
  /** When it was registered (ms). */
  at: number;
}

export default function cloudNotify(module: Module) {
  const store = module.openStore<Registration>("cloud_notify", "map");
  const index = module.openStore<string[]>("cloud_notify_keys");
  const withBody = module.getOptionBoolean("push_notification_with_body", false);
  const withSender = module.getOptionBoolean("push_notification_with_sender", true);
  const maxDevices = module.getOptionInteger("push_max_devices", 5, { min: 1 });
  const self = (user: string) => `${user}@${module.host}`;
  /** Messages since each user was last online, for `message-count`. */
  const pending = new Map<string, number>();

  module.hook("account-disco-info", ({ origin, stanza, reply }) => {
    const user = origin.username;
    if (user === undefined) return;
    if (stanza.attrs.to !== undefined && bare(stanza.attrs.to) !== self(user)) return;
    reply.tag("feature", { var: NS }).up();
  });

  async function registrations(user: string): Promise<[string, Registration][]> {
    const keys = (await index.get(user)) ?? [];
    const out: [string, Registration][] = [];
    for (const key of keys) {
      const r = await store.get(user, key);
      if (r) out.push([key, r]);
    }
    return out;
  }

  async function remove(user: string, keys: string[]) {
    if (keys.length === 0) return;
    for (const key of keys) await store.set(user, key, null);
    const left = ((await index.get(user)) ?? []).filter((k) => !keys.includes(k));
    await index.set(user, left.length ? left : null);
  }

  module.hook(`iq-set/self/${NS}:enable`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    const el = stanza.getChild("enable", NS)!;
    const jid = el.attrs.jid === undefined ? undefined : prep(el.attrs.jid);
    const node = el.attrs.node;
    if (jid === undefined || !node || node.length > 1024) {
      origin.send(stanza.errorReply("modify", "bad-request", "'jid' and 'node' are required"));
      return true;
    }
    let options: string | undefined;
    const x = el.getChild("x", DATAFORM_NS);
    if (x) {
      if (readForm(x).type !== PUBLISH_OPTIONS) {
        origin.send(stanza.errorReply("modify", "bad-request", "The form must be publish-options"));
        return true;
      }
      options = x.toString();
      if (options.length > 4096) {
        origin.send(stanza.errorReply("modify", "not-acceptable", "Publish options too large"));
        return true;
      }
    }
    const user = origin.username!;
    const key = `${jid}<${node}`;
    await store.set(user, key, { jid, node, options, at: Date.now() });
    const keys = ((await index.get(user)) ?? []).filter((k) => k !== key);
    keys.push(key);
    await index.set(user, keys);
    await remove(user, keys.slice(0, Math.max(0, keys.length - maxDevices)));
    (origin.ext ??= {}).push = key;
    module.log.debug("{user} registered push node {node} at {jid}", { user, node, jid });
    origin.send(stanza.reply());
    return true;
  });

  module.hook(`iq-set/self/${NS}:disable`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    const el = stanza.getChild("disable", NS)!;
    const jid = el.attrs.jid === undefined ? undefined : prep(el.attrs.jid);
    if (jid === undefined) {
      origin.send(stanza.errorReply("modify", "bad-request", "'jid' is required"));
      return true;
    }
    const user = origin.username!;
    const doomed = (await registrations(user))
      .filter(([, r]) => r.jid === jid && (el.attrs.node === undefined || r.node === el.attrs.node))
      .map(([key]) => key);
    await remove(user, doomed);
    for (const s of module.resources(user)) {
      if (doomed.includes(s.ext?.push as string)) delete s.ext!.push;
    }
    origin.send(stanza.reply());
    return true;
  });

  /** Publishes a notification to one registration; drops it if the app server refuses. */
  async function notify(user: string, key: string, r: Registration, stanza: Stanza) {
    const count = (pending.get(user) ?? 0) + 1;
    pending.set(user, count);
    const form = element("x", { xmlns: DATAFORM_NS, type: "submit" })
      .tag("field", { var: "FORM_TYPE" }).textTag("value", "urn:xmpp:push:summary").up()
      .tag("field", { var: "message-count" }).textTag("value", String(count)).up();
    if (withSender && stanza.attrs.from) {
      form.tag("field", { var: "last-message-sender" }).textTag("value", stanza.attrs.from).up();
    }
    const body = stanza.getChildText("body");
    if (withBody && body !== undefined) {
      form.tag("field", { var: "last-message-body" }).textTag("value", body).up();
    }
    const request = iq({
      type: "set",
      id: "push" + crypto.randomUUID(),
      from: self(user),
      to: r.jid,
    })
      .tag("pubsub", { xmlns: PUBSUB_NS })
      .tag("publish", { node: r.node })
      .tag("item").tag("notification", { xmlns: NS }).addChild(form).up().up().up();
    if (r.options) request.tag("publish-options").addChild(parseXml(r.options)).up();
    try {
      await module.sendIq(request.reset(), { timeoutMs: 60_000 });
    } catch (e) {
      const condition = (e as { condition?: string }).condition;
      // The app server no longer knows this device: stop notifying it.
      if (
        condition && condition !== "remote-server-timeout" && condition !== "resource-constraint"
      ) {
        module.log.info("push node {node} at {jid} refused a notification ({condition}); removed", {
          node: r.node,
          jid: r.jid,
          condition,
        });
        await remove(user, [key]);
      } else {
        module.log.debug("push notification failed: {error}", { error: e });
      }
    }
  }

  function worthWaking(stanza: Stanza): boolean {
    return stanza.name === "message" && isImportant(stanza) && stanza.attrs.type !== "error";
  }

  // The user is offline: every registered app hears of it.
  module.hook(
    "message/offline/handle",
    ({ username, stanza }: { username: string; stanza: Stanza }) => {
      if (!worthWaking(stanza)) return;
      registrations(username).then(async (all) => {
        for (const [key, r] of all) await notify(username, key, r, stanza);
      }).catch(module.logError);
    },
    10,
  );

  // A session away (stream management keeps it): the app that registered on it hears.
  module.hook(
    "smacks-hibernation-stanza-queued",
    ({ origin, stanza }: { origin: Session; stanza: Stanza }) => {
      const key = origin.ext?.push as string | undefined;
      if (key === undefined || !worthWaking(stanza)) return;
      const user = origin.username!;
      store.get(user, key).then((r) => r && notify(user, key, r, stanza)).catch(module.logError);
    },
  );

  // Back online: the count starts again.
  module.hook("resource-bind", ({ session }: { session: Session }) => {
    pending.delete(session.username!);
  });
  module.hook("smacks-hibernation-end", ({ origin }: { origin: Session }) => {
    pending.delete(origin.username!);
  });

  module.hookGlobal("user-deleted", ({ username, host }: { username: string; host: string }) => {
    if (host === module.host) pending.delete(username);
  });
}
