/**
 * Sending one stanza to many recipients, serialised once (a room's message
 * to its occupants, a PEP notification to contacts): the stanza is turned
 * into XML a single time, and each copy is that XML with the recipient's
 * `to` put in its opening tag. Each copy is its own small stanza (own
 * attributes and child list) sharing the child elements, which nobody
 * changes after this point: stream management and CSI keep copies, never
 * edit them in place.
 *
 * A copy for a session of this server goes straight to it (finding the
 * session, and asking its blocklist, is all the router would do for a
 * groupchat message or an event to a full JID); anything else is routed.
 *
 * @example
 * ```ts
 * const out = prepare(message({ from: "club@conference.localhost/alice", type: "groupchat" }, "hi"));
 * for (const jid of recipients) deliver(module, out, jid);
 * ```
 * @module
 */
import type { Module } from "./moduleapi.ts";
import type { Session } from "./session.ts";
import { escapeAttr, Stanza } from "./xml/stanza.ts";

/** A stanza ready to go to many recipients. */
export interface Prepared {
  name: string;
  /** Its attributes, without `to`. */
  attrs: Record<string, string | undefined>;
  children: Stanza["children"];
  /** `<name attr="…"…` */
  head: string;
  /** `>…children…</name>` or `/>` */
  tail: string;
}

/** Serialises `stanza` (whose `to` is ignored) for {@link deliver}. */
export function prepare(stanza: Stanza): Prepared {
  const attrs = { ...stanza.attrs };
  delete attrs.to;
  const shell = new Stanza(stanza.name, attrs, stanza.children);
  const xml = shell.toString();
  const open = xml.indexOf(">");
  const selfClosing = xml[open - 1] === "/" && stanza.children.length === 0;
  const headEnd = selfClosing ? open - 1 : open;
  return {
    name: stanza.name,
    attrs,
    children: stanza.children,
    head: xml.slice(0, headEnd),
    tail: xml.slice(headEnd),
  };
}

/** A stanza of its own for one recipient. */
export function copyFor(p: Prepared, to: string): Stanza {
  return new Stanza(p.name, { ...p.attrs, to }, p.children.slice());
}

/** Sends a prepared stanza to a session, addressed to its full JID (unless it blocks the sender). */
export function sendTo(session: Session, p: Prepared): boolean {
  const to = session.full_jid!;
  if (session.refuses?.(p.attrs.from ?? "")) return false;
  return session.send(copyFor(p, to), p.head + ' to="' + escapeAttr(to) + '"' + p.tail);
}

/** Sends a prepared stanza to `to`: straight to its session if it is this server's, else routed. */
export function deliver(module: Module, p: Prepared, to: string): void {
  const session = module.fullSession(to);
  if (session !== undefined) {
    if (session.refuses?.(p.attrs.from ?? "")) return; // blocked, as the router would drop it
    session.send(copyFor(p, to), p.head + ' to="' + escapeAttr(to) + '"' + p.tail);
    return;
  }
  module.send(copyFor(p, to));
}
