/**
 * Message Archive Management (XEP-0313, `urn:xmpp:mam:2` and
 * `urn:xmpp:mam:2#extended`), as Prosody's mod_mam, on by default.
 *
 * Every chat or normal message with a body (or an encrypted payload, or a
 * `<store/>` hint) that a user sends or receives is stored in their archive
 * (the archive store `archive`), with the time it was stored to the
 * microsecond, and the order of storage as the archive's order. A received
 * message gets a `<stanza-id by='user@host'/>` (XEP-0359) with its archive id,
 * any such element claiming to be from this archive removed first. A
 * message is archived before it is delivered (or stored offline), so what the
 * server has acknowledged survives a crash.
 *
 * Users query their own archive (`<query/>` with the form fields `with`,
 * `start`, `end`, `before-id`, `after-id`, `ids`, RSM paging both ways,
 * `<flip-page/>`), ask for its first and last item (`<metadata/>`), and set
 * what is archived (`<prefs/>`: `always`, `never`, `roster`; lists of JIDs
 * always and never archived).
 *
 * Options: `mam_default` ("always"; or "roster", "never" — Prosody's
 * `default_archive_policy` true/false/"roster" is read too),
 * `max_archive_query_results` (50 per page), `archive_expires_after` ("1w",
 * as Prosody; "never" keeps everything), `archive_cleanup_interval` (4 hours),
 * `archive_max_items` (per user; the oldest go first; default unlimited).
 * @module
 */
import type { Module } from "../../core/moduleapi.ts";
import type { StanzaEvent } from "../../core/router.ts";
import type { Session } from "../../core/session.ts";
import { element, type Stanza } from "../../core/xml/stanza.ts";
import { bare, prep } from "../../core/jid.ts";
import { formatDateTime } from "../../core/datetime.ts";
import { MAM_NS } from "./query.ts";
import { answerQuery, queryForm } from "./results.ts";

const EXTENDED = "urn:xmpp:mam:2#extended";
const SID_NS = "urn:xmpp:sid:0";
const HINTS_NS = "urn:xmpp:hints";
/** Expired items deleted per statement; the event loop breathes between batches. */
const EXPIRY_BATCH = 1000;

type Policy = "always" | "never" | "roster";

interface Prefs {
  default: Policy;
  always: string[];
  never: string[];
}

/** Payloads worth archiving besides a body (XEP-0313 §5.1.1 leaves the rest to servers). */
const ARCHIVED_PAYLOADS: [string, string][] = [
  ["encrypted", "eu.siacs.conversations.axolotl"],
  ["encrypted", "urn:xmpp:omemo:2"],
  ["openpgp", "urn:xmpp:openpgp:0"],
  ["x", "jabber:x:encrypted"],
];

/** Whether a message goes into the archives (before preferences). */
export function archivable(stanza: Stanza): boolean {
  const type = stanza.attrs.type ?? "normal";
  if (type !== "chat" && type !== "normal") return false;
  if (stanza.getChild("no-store", HINTS_NS) || stanza.getChild("no-permanent-store", HINTS_NS)) {
    return false;
  }
  if (stanza.getChild("body") || stanza.getChild("store", HINTS_NS)) return true;
  return ARCHIVED_PAYLOADS.some(([name, xmlns]) => stanza.getChild(name, xmlns) !== undefined);
}

export default function mam(module: Module) {
  const archive = module.openStore("archive", "archive");
  const prefsStore = module.openStore<Prefs>("archive_prefs");
  const legacy = module.getOption<unknown>("default_archive_policy");
  const defaultPolicy: Policy = module.getOption("mam_default") !== undefined
    ? module.getOptionEnum("mam_default", "always", ["roster", "never"])
    : legacy === false
    ? "never"
    : legacy === "roster"
    ? "roster"
    : "always";
  const pageLimit = module.getOptionInteger("max_archive_query_results", 50, { min: 1 });
  const expiresAfter = module.getOptionPeriod("archive_expires_after", "1w");
  const cleanupEvery = module.getOptionPeriod("archive_cleanup_interval", 4 * 3600);
  const maxItems = module.getOptionNumber("archive_max_items", Infinity, { min: 1 });
  const self = (user: string) => `${user}@${module.host}`;

  // --- what is archived ------------------------------------------------------------------

  /** Preferences, cached for users recently seen (a few hundred bytes each). */
  const prefsCache = new Map<string, Prefs>();
  async function prefsOf(user: string): Promise<Prefs> {
    let p = prefsCache.get(user);
    if (p) return p;
    p = (await prefsStore.get(user)) ?? { default: defaultPolicy, always: [], never: [] };
    if (prefsCache.size >= 10_000) prefsCache.delete(prefsCache.keys().next().value!);
    prefsCache.set(user, p);
    return p;
  }

  async function wanted(user: string, withJid: string): Promise<boolean> {
    const p = await prefsOf(user);
    if (p.never.includes(withJid)) return false;
    if (p.always.includes(withJid)) return true;
    if (p.default === "always") return true;
    if (p.default === "never") return false;
    if (withJid === self(user)) return true;
    const roster = await module.rosters.load(user, module.host);
    return roster.items.has(withJid);
  }

  /** Items per user, counted once and then kept up to date, for `archive_max_items`. */
  const counts = new Map<string, number>();
  async function store(user: string, stanza: Stanza, withJid: string): Promise<string> {
    const id = await archive.append(user, null, stanza, Date.now() / 1000, withJid);
    if (maxItems !== Infinity) await enforceQuota(user);
    return id;
  }

  async function enforceQuota(user: string) {
    let n = counts.get(user);
    n = n === undefined ? await archive.count(user) : n + 1;
    if (n > maxItems) {
      const oldest = await archive.find(user, { limit: n - maxItems });
      n -= await archive.delete(user, { ids: oldest.map((i) => i.id) });
    }
    counts.set(user, n);
  }

  /** Messages archived already, with their id: re-routed ones are not stored twice. */
  const archived = new WeakMap<Stanza, { user: string; id: string }>();

  /** Removes stanza-ids claiming to come from `by`'s archive: only this server adds those. */
  function stripIdsBy(stanza: Stanza, by: string) {
    const claimed = (c: Stanza["children"][number]) =>
      typeof c !== "string" && c.name === "stanza-id" && c.attrs.xmlns === SID_NS &&
      (c.attrs.by === by || prep(c.attrs.by ?? "") === by); // also Juliet@LOCALHOST
    // Every message passes here twice: no new array unless there is one to drop.
    if (stanza.children.some(claimed)) stanza.children = stanza.children.filter((c) => !claimed(c));
  }

  // Outgoing: into the sender's archive, before the message goes anywhere. Its
  // stanza-id goes with it as far as the sender's other resources' carbons
  // (carbons runs at -0.5), so that they know its place in their archive, as
  // with Prosody; the recipient does not see it (below).
  async function outgoing({ origin, stanza }: StanzaEvent) {
    const user = origin.username;
    if (origin.type !== "c2s" || user === undefined) return;
    stripIdsBy(stanza, self(user)); // made up by the client
    if (!archivable(stanza)) return;
    const withJid = stanza.attrs.to === undefined ? self(user) : bare(stanza.attrs.to);
    if (!await wanted(user, withJid)) return;
    try {
      const id = await store(user, stanza, withJid);
      archived.set(stanza, { user, id });
      addStanzaId(stanza, self(user), id);
    } catch (e) {
      module.log.error("could not archive a message from {user}: {error}", { user, error: e });
    }
  }
  module.hook("pre-message/bare", outgoing, -0.25);
  module.hook("pre-message/full", outgoing, -0.25);
  function hideSenderId({ origin, stanza }: StanzaEvent) {
    if (origin.type === "c2s" && origin.username !== undefined) {
      stripIdsBy(stanza, self(origin.username));
    }
  }
  module.hook("pre-message/bare", hideSenderId, -1);
  module.hook("pre-message/full", hideSenderId, -1);

  // Incoming: into the recipient's archive, marked with its id, before delivery.
  async function incoming(event: StanzaEvent) {
    const { stanza } = event;
    const user = event.to_user;
    if (user === undefined) return;
    const me = self(user);
    // Only this archive says what its ids are.
    stripIdsBy(stanza, me); // (re-added below when archived); others' ids (a room's) stay
    const done = archived.get(stanza);
    if (done?.user === user) return void addStanzaId(stanza, me, done.id); // sent to oneself
    if (!archivable(stanza)) return;
    const from = stanza.attrs.from === undefined ? module.host : bare(stanza.attrs.from);
    if (!module.isOnline(user) && !await module.users.userExists(user)) return;
    if (!await wanted(user, from)) return;
    try {
      const id = await store(user, stanza, from);
      archived.set(stanza, { user, id });
      addStanzaId(stanza, me, id);
    } catch (e) {
      module.log.error("could not archive a message to {user}: {error}", { user, error: e });
    }
  }
  module.hook("message/bare", incoming, 2);
  module.hook("message/full", incoming, 2);

  function addStanzaId(stanza: Stanza, by: string, id: string) {
    stanza.tag("stanza-id", { xmlns: SID_NS, by, id }).up();
  }

  // The archive is its owner's: only they see it advertised.
  module.hook("account-disco-info", ({ origin, stanza, reply }) => {
    const user = origin.username;
    if (user === undefined) return;
    if (stanza.attrs.to !== undefined && bare(stanza.attrs.to) !== self(user)) return;
    for (const f of [MAM_NS, EXTENDED, SID_NS]) reply.tag("feature", { var: f }).up();
  });

  // --- queries ---------------------------------------------------------------------------

  module.hook(`iq-get/self/${MAM_NS}:query`, ({ origin, stanza }: StanzaEvent<Session>) => {
    origin.send(stanza.reply().addChild(queryForm()));
    return true;
  });

  module.hook(
    `iq-set/self/${MAM_NS}:query`,
    ({ origin, stanza }: StanzaEvent<Session>) =>
      answerQuery(origin, stanza, archive, origin.username!, self(origin.username!), pageLimit),
  );

  module.hook(
    `iq-get/self/${MAM_NS}:metadata`,
    async ({ origin, stanza }: StanzaEvent<Session>) => {
      const user = origin.username!;
      const [first] = await archive.find(user, { limit: 1 });
      const [last] = await archive.find(user, { limit: 1, reverse: true });
      const reply = stanza.reply().tag("metadata", { xmlns: MAM_NS });
      if (first && last) {
        reply.tag("start", { id: first.id, timestamp: formatDateTime(first.when) }).up();
        reply.tag("end", { id: last.id, timestamp: formatDateTime(last.when) }).up();
      }
      origin.send(reply);
      return true;
    },
  );

  // --- preferences -----------------------------------------------------------------------

  function prefsElement(p: Prefs): Stanza {
    const el = element("prefs", { xmlns: MAM_NS, default: p.default });
    for (const list of ["always", "never"] as const) {
      el.tag(list);
      for (const jid of p[list]) el.textTag("jid", jid);
      el.up();
    }
    return el;
  }

  module.hook(`iq-get/self/${MAM_NS}:prefs`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    origin.send(stanza.reply().addChild(prefsElement(await prefsOf(origin.username!))));
    return true;
  });

  module.hook(`iq-set/self/${MAM_NS}:prefs`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    const el = stanza.getChild("prefs", MAM_NS)!;
    const policy = el.attrs.default ?? "always";
    if (policy !== "always" && policy !== "never" && policy !== "roster") {
      origin.send(
        stanza.errorReply("modify", "bad-request", "default must be always, never or roster"),
      );
      return true;
    }
    const p: Prefs = { default: policy, always: [], never: [] };
    for (const list of ["always", "never"] as const) {
      for (const j of el.getChild(list)?.tags() ?? []) {
        if (j.name !== "jid") continue;
        const jid = prep(j.getText().trim());
        if (jid === undefined) {
          origin.send(stanza.errorReply("modify", "jid-malformed", `Invalid JID in <${list}/>`));
          return true;
        }
        if (p[list].length >= 1000) {
          origin.send(stanza.errorReply("modify", "policy-violation", "Too many JIDs"));
          return true;
        }
        p[list].push(jid);
      }
    }
    const user = origin.username!;
    await prefsStore.set(user, p);
    prefsCache.set(user, p);
    origin.send(stanza.reply().addChild(prefsElement(p)));
    return true;
  });

  // --- expiry ------------------------------------------------------------------------------

  /** Deletes what is older than `archive_expires_after`, a batch at a time. */
  async function expire(): Promise<number> {
    const before = Date.now() / 1000 - expiresAfter;
    let total = 0;
    while (module.loaded) {
      const n = await archive.expire(before, EXPIRY_BATCH);
      total += n;
      if (n < EXPIRY_BATCH) break;
      await new Promise((r) => setTimeout(r, 0)); // others' stanzas go first
    }
    if (total) {
      counts.clear();
      module.log.info("removed {n} archived messages older than {days} days", {
        n: total,
        days: Math.round(expiresAfter / 86400 * 10) / 10,
      });
    }
    return total;
  }
  if (expiresAfter !== Infinity) {
    module.onReady(() => {
      module.addTimer(Math.min(60, cleanupEvery), async () => {
        await expire();
        return cleanupEvery;
      });
    });
  }
  module.exports.expire = expire;

  module.hookGlobal("user-deleted", ({ username, host }: { username: string; host: string }) => {
    if (host !== module.host) return;
    prefsCache.delete(username);
    counts.delete(username);
  });
}
