/**
 * Sending one stanza to many occupants, serialised once: the room's
 * message or presence is turned into XML a single time, and each copy is
 * that XML with the recipient's `to` put in its opening tag. Each copy is
 * its own small stanza (own attributes and child list) sharing the child
 * elements, which nobody changes after this point: stream management and
 * CSI keep copies, never edit them in place.
 *
 * A copy for a session of this server goes straight to it (the router's
 * per-recipient work — finding the session — is all a groupchat stanza to
 * a full JID needs); anything else is routed.
 *
 * @example
 * ```ts
 * const out = prepare(message({ from: "club@conference.localhost/alice", type: "groupchat" }, "hi"));
 * for (const jid of recipients) deliver(module, out, jid);
 * ```
 * @module
 */
import type { Module } from "../../core/moduleapi.ts";
import { escapeAttr, Stanza } from "../../core/xml/stanza.ts";

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

/** Sends a prepared stanza to `to`. */
export function deliver(module: Module, p: Prepared, to: string): void {
  const copy = copyFor(p, to);
  const session = module.fullSession(to);
  if (session !== undefined) {
    session.send(copy, p.head + ' to="' + escapeAttr(to) + '"' + p.tail);
    return;
  }
  module.send(copy);
}
