/**
 * Answering a MAM query (XEP-0313 §4): the query form (an iq get), and an
 * iq set read, run and answered with one `<result/>` message per item and
 * the `<fin/>` — for a user's archive (mam) and a room's (muc_mam) alike.
 *
 * @example
 * ```ts
 * module.hook(`iq-set/self/${MAM_NS}:query`, ({ origin, stanza }) =>
 *   answerQuery(origin, stanza, archive, origin.username!, "juliet@localhost", 50));
 * ```
 * @module
 */
import type { Origin } from "../../core/router.ts";
import { element, message, type Stanza } from "../../core/xml/stanza.ts";
import { type ArchiveStore, StorageError } from "../../core/storage/types.ts";
import { formatDateTime } from "../../core/datetime.ts";
import { buildForm } from "../../core/xml/dataform.ts";
import { MAM_NS, readQuery, RSM_NS, runQuery } from "./query.ts";

const FORWARD_NS = "urn:xmpp:forward:0";
const DELAY_NS = "urn:xmpp:delay";
/** Output waiting for the client past which a page waits for it to read. */
const PACE = 128 * 1024;

/** What a client session offers to pace a large page (absent for other origins). */
interface Paced {
  backlog?: number;
  destroyed?: boolean;
  conn?: { flush(): Promise<unknown> };
}

/** The query form (the answer to an iq get of `<query/>`). */
export function queryForm(): Stanza {
  const form = buildForm("form", MAM_NS, [
    { var: "with", type: "jid-single" },
    { var: "start", type: "text-single" },
    { var: "end", type: "text-single" },
    { var: "before-id", type: "text-single" },
    { var: "after-id", type: "text-single" },
    { var: "ids", type: "list-multi" },
  ]);
  // `ids` takes any value (XEP-0122 open validation), not one from a list.
  for (const f of form.tags()) {
    if (f.attrs.var === "ids") {
      f.tag("validate", {
        xmlns: "http://jabber.org/protocol/xdata-validate",
        datatype: "xs:string",
      })
        .tag("open").up().up();
    }
  }
  return element("query", { xmlns: MAM_NS }).addChild(form);
}

/**
 * Runs the query in `stanza` on `user`'s part of `archive` and sends the
 * results to the asker, from `archiveJid`; `pageLimit` caps the page size.
 * `shown` may rewrite each stored message before it goes out.
 */
export async function answerQuery(
  origin: Origin & Paced,
  stanza: Stanza,
  archive: ArchiveStore,
  user: string,
  archiveJid: string,
  pageLimit: number,
  shown: (stored: Stanza, id: string) => Stanza = (s) => s,
): Promise<true> {
  const q = readQuery(stanza.getChild("query", MAM_NS)!, pageLimit);
  if ("error" in q) {
    origin.send(stanza.errorReply(q.type, q.error, q.text));
    return true;
  }
  let page;
  try {
    page = await runQuery(archive, user, q);
  } catch (e) {
    if (e instanceof StorageError && e.condition === "item-not-found") {
      origin.send(stanza.errorReply("cancel", "item-not-found", "No such message in the archive"));
      return true;
    }
    throw e;
  }
  const to = stanza.attrs.from ?? origin.full_jid;
  for (const item of page.items) {
    const original = shown(item.stanza, item.id);
    original.attrs = { xmlns: "jabber:client", ...original.attrs };
    const result = message({ to, from: archiveJid, id: crypto.randomUUID() })
      .tag(
        "result",
        q.queryid === undefined
          ? { xmlns: MAM_NS, id: item.id }
          : { xmlns: MAM_NS, queryid: q.queryid, id: item.id },
      )
      .tag("forwarded", { xmlns: FORWARD_NS })
      .tag("delay", { xmlns: DELAY_NS, stamp: formatDateTime(item.when) }).up()
      .addChild(original);
    origin.send(result.reset());
    // A page may hold 50 large messages: let the client read them as they go
    // (the output cap closes streams whose backlog grows past it). The socket,
    // not stream management: its acks are read only after this handler.
    if ((origin.backlog ?? 0) > PACE) await origin.conn?.flush();
    if (origin.destroyed) return true;
  }
  const fin = element(
    "fin",
    page.complete ? { xmlns: MAM_NS, complete: "true" } : { xmlns: MAM_NS },
  )
    .tag("set", { xmlns: RSM_NS });
  if (page.first !== undefined) fin.textTag("first", page.first).textTag("last", page.last!);
  if (q.max === 0) fin.textTag("count", String(await archive.count(user, q.filter)));
  origin.send(stanza.reply().addChild(fin.reset()));
  return true;
}
