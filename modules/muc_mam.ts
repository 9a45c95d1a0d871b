/**
 * The room archive (XEP-0313 on a room's JID), as Prosody's mod_muc_mam;
 * the MUC component loads it unless its `modules_disabled` lists it.
 *
 * Each groupchat message with a body in a room whose archiving is on
 * (`muc#roomconfig_enablearchiving`, default `muc_log_by_default`) is
 * stored (archive store `muc_log`, one part per room) before it goes out,
 * and its archive id becomes the room's `<stanza-id/>` (XEP-0359); the
 * history a joining occupant gets comes from here. Anyone who may join the
 * room may query its archive (members only for a members-only room; never
 * the banned), with the same query features as a user's archive.
 *
 * Options: `max_archive_query_results` (50), `muc_log_expires_after`
 * ("1w", as Prosody; "never" keeps everything), `muc_log_cleanup_interval`
 * (4 hours).
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import { bare } from "../core/jid.ts";
import type { Stanza } from "../core/xml/stanza.ts";
import { formatDateTime } from "../core/datetime.ts";
import { MAM_NS } from "./mam/query.ts";
import { answerQuery, queryForm } from "./mam/results.ts";
import { affiliationOf, type Room } from "./muc/room.ts";
import { DELAY_NS, type HistoryRequest } from "./muc/service.ts";

const SID_NS = "urn:xmpp:sid:0";
const HINTS_NS = "urn:xmpp:hints";
const EXPIRY_BATCH = 1000;

export default function mucMam(module: Module) {
  const archive = module.openStore("muc_log", "archive");
  const pageLimit = module.getOptionInteger("max_archive_query_results", 50, { min: 1 });
  const expiresAfter = module.getOptionPeriod("muc_log_expires_after", "1w");
  const cleanupEvery = module.getOptionPeriod("muc_log_cleanup_interval", 4 * 3600);

  module.hook("muc-archive-message", ({ room, stanza }: { room: Room; stanza: Stanza }) => {
    if (!room.config.archiving) return undefined;
    if (stanza.getChild("no-store", HINTS_NS) || stanza.getChild("no-permanent-store", HINTS_NS)) {
      return undefined;
    }
    return archive.append(room.name, null, stanza, undefined, room.jid);
  });

  module.hook(
    "muc-get-history",
    async ({ room, request }: { room: Room; request: HistoryRequest }) => {
      if (!room.config.archiving) return undefined;
      const items = await archive.find(room.name, {
        limit: request.maxstanzas,
        reverse: true,
        start: request.since,
      });
      return items.reverse().map((i) => shown(room, i.stanza, i.id, i.when));
    },
  );

  /** A stored message as it goes out: with the room's stanza-id, and as history a delay. */
  function shown(room: Room, stored: Stanza, id: string, when?: number): Stanza {
    stored.children = stored.children.filter((c) =>
      typeof c === "string" || !(c.name === "stanza-id" && c.attrs.xmlns === SID_NS)
    );
    stored.tag("stanza-id", { xmlns: SID_NS, by: room.jid, id }).up();
    if (when !== undefined) {
      stored.tag("delay", { xmlns: DELAY_NS, from: room.jid, stamp: formatDateTime(when) }).up();
    }
    return stored;
  }

  module.hook("muc-disco-info", ({ room, features }: { room: Room; features: string[] }) => {
    if (room.config.archiving) features.push(MAM_NS);
  });

  module.hook(`muc-iq/${MAM_NS}:query`, ({ room, event }: { room: Room; event: StanzaEvent }) => {
    const { origin, stanza } = event;
    const from = bare(stanza.attrs.from ?? origin.full_jid ?? "");
    const affiliation = affiliationOf(room, from);
    if (affiliation === "outcast" || (room.config.membersOnly && affiliation === "none")) {
      origin.send(stanza.errorReply("auth", "forbidden", "You may not read this room's archive"));
      return true;
    }
    if (stanza.attrs.type === "get") {
      origin.send(stanza.reply().addChild(queryForm()));
      return true;
    }
    return answerQuery(
      origin,
      stanza,
      archive,
      room.name,
      room.jid,
      pageLimit,
      (s, id) => shown(room, s, id),
    );
  });

  module.hook("muc-room-destroyed", ({ room }: { room: Room }) => archive.delete(room.name));

  async function expire() {
    const before = Date.now() / 1000 - expiresAfter;
    while (module.loaded && await archive.expire(before, EXPIRY_BATCH) === EXPIRY_BATCH) {
      await new Promise((r) => setTimeout(r, 0)); // others' stanzas go first
    }
  }
  if (expiresAfter !== Infinity) {
    module.onReady(() => {
      module.addTimer(Math.min(60, cleanupEvery), async () => {
        await expire();
        return cleanupEvery;
      });
    });
  }
}
