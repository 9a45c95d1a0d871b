/**
 * Bookmarks (XEP-0402, `urn:xmpp:bookmarks:1` in PEP) with the XEP-0048
 * compatibility Prosody's mod_bookmarks gives (XEP-0402 §3): a client that
 * still keeps `storage:bookmarks` in private XML storage (XEP-0049) sees the
 * same rooms as one using PEP. A legacy save becomes one PEP item per room
 * (rooms it no longer lists are retracted); a legacy read is built from the
 * PEP items. `<url/>` bookmarks, which XEP-0402 has no place for, stay in
 * private storage. Advertises `urn:xmpp:bookmarks:1#compat`.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { parseXml } from "../core/xml/parser.ts";
import { element, type Stanza } from "../core/xml/stanza.ts";
import type { SubmittedForm } from "../core/xml/dataform.ts";
import { prep } from "../core/jid.ts";
import { PUBLISH_OPTIONS } from "../core/pubsub/node.ts";
import type { PepExports } from "./pep.ts";

const PRIVATE = "jabber:iq:private";
const LEGACY = "storage:bookmarks";
const NODE = "urn:xmpp:bookmarks:1";
/** Where private.ts keeps the legacy document. */
const PRIVATE_KEY = `{${LEGACY}}storage`;

/** XEP-0402 §5: the node's configuration. */
const OPTIONS: SubmittedForm = {
  type: PUBLISH_OPTIONS,
  fields: new Map([
    ["pubsub#persist_items", ["true"]],
    ["pubsub#max_items", ["max"]],
    ["pubsub#send_last_published_item", ["never"]],
    ["pubsub#access_model", ["whitelist"]],
  ]),
};

/** A legacy `<conference/>` as a XEP-0402 payload; undefined without a valid room JID. */
function toPep(conference: Stanza): { jid: string; payload: string } | undefined {
  const jid = prep(conference.attrs.jid ?? "");
  if (!jid || jid.includes("/")) return undefined;
  const attrs: Record<string, string> = { xmlns: NODE };
  if (conference.attrs.name) attrs.name = conference.attrs.name;
  const autojoin = conference.attrs.autojoin;
  if (autojoin === "true" || autojoin === "1") attrs.autojoin = "true";
  const c = element("conference", attrs);
  const nick = conference.getChildText("nick");
  if (nick) c.textTag("nick", nick);
  const password = conference.getChildText("password");
  if (password) c.textTag("password", password);
  return { jid, payload: c.toString() };
}

/** A XEP-0402 item as a legacy `<conference/>`. */
function toLegacy(id: string, payload: string): Stanza {
  const c = parseXml(payload);
  const attrs: Record<string, string> = { jid: id };
  if (c.attrs.name) attrs.name = c.attrs.name;
  attrs.autojoin = c.attrs.autojoin === "true" || c.attrs.autojoin === "1" ? "true" : "false";
  const legacy = element("conference", attrs);
  const nick = c.getChildText("nick", NODE);
  if (nick) legacy.textTag("nick", nick);
  const password = c.getChildText("password", NODE);
  if (password) legacy.textTag("password", password);
  return legacy;
}

export default async function bookmarks(module: Module) {
  const pep = await module.depends<PepExports>("pep");
  const privateStore = module.openStore<string>("private", "map");

  /** The PEP bookmarks of a user, id (room JID) → payload. */
  async function pepBookmarks(user: string): Promise<Map<string, string>> {
    const node = (await pep.nodesOf(user)).get(NODE);
    return new Map(node?.items.map((i) => [i.id, i.payload]) ?? []);
  }

  /** Makes the PEP node list exactly the legacy document's rooms. */
  async function sync(user: string, storage: Stanza) {
    const wanted = new Map<string, string>();
    for (const c of storage.tags()) {
      if (c.name !== "conference") continue;
      const b = toPep(c);
      if (b) wanted.set(b.jid, b.payload);
    }
    const current = await pepBookmarks(user);
    for (const [jid, payload] of wanted) {
      if (current.get(jid) === payload) continue;
      const r = await pep.publish(user, NODE, jid, payload, OPTIONS);
      if ("condition" in r) throw new Error(`bookmark ${jid}: ${r.condition}`);
    }
    for (const jid of current.keys()) {
      if (!wanted.has(jid)) await pep.retract(user, NODE, jid, true);
    }
  }

  module.hook(`iq/self/${PRIVATE}:query`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    const user = origin.username!;
    const els = stanza.getChild("query", PRIVATE)!.tags();
    const storage = els.find((el) => el.name === "storage" && el.attrs.xmlns === LEGACY);
    if (!storage) return; // not bookmarks: private.ts
    if (stanza.attrs.type === "set") {
      try {
        await sync(user, storage);
      } catch (e) {
        module.log.warn("could not convert {user}'s bookmarks: {error}", { user, error: e });
        origin.send(stanza.errorReply("wait", "internal-server-error"));
        return true;
      }
      return; // private.ts stores the document too (its <url/>s)
    }
    if (els.length !== 1) return;
    // A legacy read: the rooms from PEP, the rest as stored.
    let rooms = await pepBookmarks(user);
    const stored = await privateStore.get(user, PRIVATE_KEY);
    const doc = stored ? parseXml(stored) : element("storage", { xmlns: LEGACY });
    if (rooms.size === 0 && doc.tags().some((c) => c.name === "conference")) {
      await sync(user, doc); // kept before this module: moved into PEP once
      rooms = await pepBookmarks(user);
    }
    const reply = element("storage", { xmlns: LEGACY });
    for (const [jid, payload] of rooms) reply.addChild(toLegacy(jid, payload));
    for (const c of doc.tags()) if (c.name !== "conference") reply.addChild(c);
    origin.send(stanza.reply().tag("query", { xmlns: PRIVATE }).addChild(reply).up());
    return true;
  }, 1);

  module.hook("account-disco-info", ({ reply }: { reply: Stanza }) => {
    reply.tag("feature", { var: `${NODE}#compat` }).up();
  });
}
