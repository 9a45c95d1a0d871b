/**
 * A MAM query (XEP-0313 §4) read into an archive query: the form's filters
 * (`with`, `start`, `end`, and the extended `before-id`, `after-id`, `ids`)
 * and the RSM page (XEP-0059: `max`, `before`, `after`), with the errors
 * the XEP names for what cannot be read.
 *
 * @example
 * ```ts
 * const q = readQuery(stanza.getChild("query", MAM_NS)!, 50);
 * if ("error" in q) return origin.send(stanza.errorReply(q.type, q.error, q.text));
 * const page = await runQuery(archive, "juliet", q);
 * ```
 * @module
 */
import {
  type ArchiveItem,
  type ArchiveQuery,
  type ArchiveStore,
  StorageError,
} from "../../core/storage/types.ts";
import type { Stanza } from "../../core/xml/stanza.ts";
import { DATAFORM_NS, readForm } from "../../core/xml/dataform.ts";
import { parseDateTime } from "../../core/datetime.ts";
import { bare, prep } from "../../core/jid.ts";

export const MAM_NS = "urn:xmpp:mam:2";
export const RSM_NS = "http://jabber.org/protocol/rsm";

/** The fields a query form may have (besides FORM_TYPE). */
export const QUERY_FIELDS = ["with", "start", "end", "before-id", "after-id", "ids"];

/** A query as read: what to ask the archive, and how to page. */
export interface MamQuery {
  filter: ArchiveQuery;
  /** A full JID in `with`: only messages to or from exactly it. */
  withFull?: string;
  /** Items per page. */
  max: number;
  /** Page backwards (RSM `<before/>`): the newest items before the anchor, or the last page. */
  backwards: boolean;
  /** Send the page newest first (`<flip-page/>`). */
  flip: boolean;
  queryid?: string;
}

/** Why a query cannot be run: a stanza error. */
export interface QueryError {
  type: "modify" | "cancel";
  error: string;
  text: string;
}

/** Reads a `<query/>`; `limit` caps the page size (`max_archive_query_results`). */
export function readQuery(query: Stanza, limit: number): MamQuery | QueryError {
  const filter: ArchiveQuery = {};
  let withFull: string | undefined;
  const x = query.getChild("x", DATAFORM_NS);
  if (x) {
    const form = readForm(x);
    if (form.type !== undefined && form.type !== MAM_NS) {
      return bad(`FORM_TYPE must be ${MAM_NS}`);
    }
    for (const [name, values] of form.fields) {
      if (!QUERY_FIELDS.includes(name)) {
        return {
          type: "cancel",
          error: "feature-not-implemented",
          text: `Unknown field '${name}'`,
        };
      }
      if (values.length === 0) continue;
      const value = values[0];
      if (name === "with") {
        const jid = prep(value);
        if (jid === undefined) {
          return { type: "modify", error: "jid-malformed", text: "Invalid 'with'" };
        }
        filter.with = bare(jid);
        if (jid !== filter.with) withFull = jid;
      } else if (name === "start" || name === "end") {
        const t = parseDateTime(value);
        if (t === undefined) return bad(`'${name}' is not a XEP-0082 DateTime`);
        filter[name] = t;
      } else if (name === "before-id") {
        filter.before = value;
      } else if (name === "after-id") {
        filter.after = value;
      } else if (name === "ids") {
        if (values.length > limit) return bad(`At most ${limit} ids at once`);
        filter.ids = values;
      }
    }
  }
  let max = limit;
  let backwards = false;
  const set = query.getChild("set", RSM_NS);
  if (set) {
    const m = set.getChildText("max");
    if (m !== undefined) {
      if (!/^\d+$/.test(m.trim())) return bad("RSM <max/> must be a whole number");
      max = Math.min(limit, Number(m.trim()));
    }
    const before = set.getChild("before");
    const after = set.getChildText("after");
    if (before) {
      backwards = true;
      const id = before.getText();
      if (id !== "") filter.before = id; // an empty <before/>: the last page
    }
    if (after !== undefined) {
      if (after === "") return bad("RSM <after/> needs an id");
      filter.after = after;
    }
  }
  return {
    filter,
    withFull,
    max,
    backwards,
    flip: query.getChild("flip-page") !== undefined,
    queryid: query.attrs.queryid,
  };
}

function bad(text: string): QueryError {
  return { type: "modify", error: "bad-request", text };
}

/** One page of results, in the order they are to be sent. */
export interface Page {
  items: ArchiveItem[];
  /** No more items in the direction of paging. */
  complete: boolean;
  /** Ids of the oldest and newest item of the page. */
  first?: string;
  last?: string;
}

/**
 * Runs a query: one more item than the page holds is fetched, to know
 * whether the page is the last one. Throws the archive's `item-not-found`
 * for an unknown anchor id.
 */
export async function runQuery(archive: ArchiveStore, user: string, q: MamQuery): Promise<Page> {
  if (q.filter.ids) {
    // Every id asked for must exist (XEP-0313 §4.1.3).
    const found = await archive.find(user, { ids: q.filter.ids });
    const known = new Set(found.map((i) => i.id));
    const missing = q.filter.ids.find((id) => !known.has(id));
    if (missing !== undefined) {
      throw new StorageError("item-not-found", `no archive item ${missing}`);
    }
  }
  let items = await archive.find(user, {
    ...q.filter,
    limit: q.max + 1,
    reverse: q.backwards,
  });
  if (q.withFull) items = items.filter((i) => involves(i.stanza, q.withFull!));
  const complete = items.length <= q.max;
  items = items.slice(0, q.max);
  if (q.backwards) items.reverse(); // pages are chronological either way
  const page: Page = {
    items,
    complete,
    first: items[0]?.id,
    last: items[items.length - 1]?.id,
  };
  if (q.flip) page.items = [...items].reverse();
  return page;
}

/** Whether a message was sent to or from exactly this full JID. */
function involves(stanza: Stanza, full: string): boolean {
  return stanza.attrs.from === full || stanza.attrs.to === full;
}
