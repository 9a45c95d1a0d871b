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
import { NODE_CONFIG, PUBLISH_OPTIONS } from "../core/pubsub/node.ts";
import { KeyedLock } from "../core/keyedlock.ts";
import type { PepExports } from "./pep/mod.ts";

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

/** A room JID as a bookmark id: bare and prepared, or undefined. */
function roomId(jid: string): string | undefined {
  const id = prep(jid);
  return id && !id.includes("/") ? id : undefined;
}

/** What XEP-0048 can say about a bookmark: the fields both forms share. */
interface Fields {
  name?: string;
  autojoin: boolean;
  nick?: string;
  password?: string;
}

const truthy = (v: string | undefined) => v === "true" || v === "1";

function legacyFields(c: Stanza): Fields {
  return {
    name: c.attrs.name || undefined,
    autojoin: truthy(c.attrs.autojoin),
    nick: c.getChildText("nick") || undefined,
    password: c.getChildText("password") || undefined,
  };
}

function pepFields(c: Stanza): Fields {
  return {
    name: c.attrs.name || undefined,
    autojoin: truthy(c.attrs.autojoin),
    nick: c.getChildText("nick", NODE) || undefined,
    password: c.getChildText("password", NODE) || undefined,
  };
}

const same = (a: Fields, b: Fields) =>
  a.name === b.name && a.autojoin === b.autojoin && a.nick === b.nick &&
  a.password === b.password;

/**
 * A XEP-0402 payload with these fields; what else `old` held (its
 * `<extensions/>`, which XEP-0048 has no place for) is kept.
 */
function toPep(f: Fields, old?: Stanza): string {
  const attrs: Record<string, string> = { xmlns: NODE };
  if (f.name) attrs.name = f.name;
  if (f.autojoin) attrs.autojoin = "true";
  const c = element("conference", attrs);
  if (f.nick) c.textTag("nick", f.nick);
  if (f.password) c.textTag("password", f.password);
  for (const child of old?.tags() ?? []) {
    if (child.name !== "nick" && child.name !== "password") c.addChild(child);
  }
  return c.toString();
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
  /** One conversion at a time per account: two saves at once would mix. */
  const lock = new KeyedLock();

  /** The PEP bookmarks of a user, id (room JID) → payload. */
  async function pepBookmarks(user: string): Promise<Map<string, string>> {
    const node = (await pep.nodesOf(user)).get(NODE);
    return new Map(node?.items.map((i) => [i.id, i.payload]) ?? []);
  }

  /**
   * Makes the PEP node list the legacy document's rooms: changed ones are
   * republished (keeping what XEP-0048 cannot show), missing ones retracted —
   * except items XEP-0048 cannot name (an id that is no room JID).
   */
  async function sync(user: string, storage: Stanza, retract = true) {
    const wanted = new Map<string, Fields>();
    for (const c of storage.tags()) {
      if (c.name !== "conference") continue;
      const id = roomId(c.attrs.jid ?? "");
      if (id) wanted.set(id, legacyFields(c));
    }
    const current = await pepBookmarks(user);
    for (const [id, fields] of wanted) {
      const old = current.has(id) ? parseXml(current.get(id)!) : undefined;
      if (old && same(pepFields(old), fields)) continue;
      const payload = toPep(fields, old);
      let r = await pep.publish(user, NODE, id, payload, OPTIONS);
      if ("condition" in r && r.specific === "precondition-not-met") {
        // Made by a client without XEP-0402's options (one item, not private): set them, as
        // the owner's server may, and try again.
        await pep.configure(user, NODE, { ...OPTIONS, type: NODE_CONFIG });
        r = await pep.publish(user, NODE, id, payload, OPTIONS);
      }
      if ("condition" in r) throw new Error(`bookmark ${id}: ${r.condition}`);
    }
    if (!retract) return;
    for (const id of current.keys()) {
      if (!wanted.has(id) && roomId(id) === id) await pep.retract(user, NODE, id, true);
    }
  }

  /** The private document without its rooms (they live in PEP). */
  function withoutRooms(storage: Stanza): string {
    const rest = element("storage", { xmlns: LEGACY });
    for (const c of storage.tags()) if (c.name !== "conference") rest.addChild(c);
    return rest.toString();
  }

  module.hook(`iq/self/${PRIVATE}:query`, ({ origin, stanza }: StanzaEvent<Session>) => {
    const els = stanza.getChild("query", PRIVATE)!.tags();
    const storage = els.find((el) => el.name === "storage" && el.attrs.xmlns === LEGACY);
    if (!storage || els.length !== 1) return; // not (only) bookmarks: private.ts
    const user = origin.username!;
    return lock.run(user, async () => {
      if (stanza.attrs.type === "set") {
        try {
          await sync(user, storage);
          await privateStore.set(user, PRIVATE_KEY, withoutRooms(storage));
        } catch (e) {
          module.log.warn("could not convert {user}'s bookmarks: {error}", { user, error: e });
          origin.send(stanza.errorReply("wait", "internal-server-error"));
          return true;
        }
        origin.send(stanza.reply());
        return true;
      }
      // A legacy read: the rooms from PEP, the rest as stored.
      const stored = await privateStore.get(user, PRIVATE_KEY);
      const doc = stored ? parseXml(stored) : element("storage", { xmlns: LEGACY });
      if (doc.tags().some((c) => c.name === "conference")) {
        // Kept before this module: moved into PEP (added to what is there), once.
        await sync(user, doc, false);
        await privateStore.set(user, PRIVATE_KEY, withoutRooms(doc));
      }
      const reply = element("storage", { xmlns: LEGACY });
      for (const [id, payload] of await pepBookmarks(user)) {
        reply.addChild(toLegacy(id, payload));
      }
      for (const c of doc.tags()) if (c.name !== "conference") reply.addChild(c);
      origin.send(stanza.reply().tag("query", { xmlns: PRIVATE }).addChild(reply).up());
      return true;
    });
  }, 1);

  module.hook("account-disco-info", ({ reply }: { reply: Stanza }) => {
    reply.tag("feature", { var: `${NODE}#compat` }).up();
  });
}
