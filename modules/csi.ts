/**
 * Client State Indication (XEP-0352, `urn:xmpp:csi:0`), as Prosody's
 * mod_csi with mod_csi_simple: a client says `<inactive/>` when its user is
 * not looking (a phone in a pocket) and `<active/>` when they are back.
 *
 * While a client is inactive, stanzas that can wait are held back: presence
 * updates (only the latest one per contact is kept) and messages that carry
 * nothing for the user (chat states, receipts, markers). The first stanza
 * that matters — a message with a body, a subject or an encrypted payload,
 * an invitation, an error, a subscription request, any iq — lets everything
 * held go out at once, in order, followed by itself; so does `<active/>`.
 * Modules can mark more stanzas important with the `csi-is-stanza-important`
 * event (`{ stanza, session }`; return true or false), as in Prosody.
 *
 * Option `csi_queue_size` (256): held stanzas past which the queue goes out
 * anyway.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { Session } from "../core/session.ts";
import type { Stanza } from "../core/xml/stanza.ts";

const NS = "urn:xmpp:csi:0";

/** Payloads that make a message worth waking the client for. */
const IMPORTANT_PAYLOADS: [string, string | undefined][] = [
  ["body", undefined],
  ["subject", undefined],
  ["encrypted", "eu.siacs.conversations.axolotl"],
  ["encrypted", "urn:xmpp:omemo:2"],
  ["x", "jabber:x:encrypted"],
  ["openpgp", "urn:xmpp:openpgp:0"],
  ["x", "jabber:x:conference"],
  ["propose", "urn:xmpp:jingle-message:0"],
];

/** Whether a stanza must reach an inactive client now (the built-in rules). */
export function isImportant(stanza: Stanza): boolean {
  if (stanza.name === "iq") return true;
  const type = stanza.attrs.type;
  if (stanza.name === "presence") {
    // Subscription handling needs the user; availability can wait.
    return type !== undefined && type !== "unavailable" && type !== "probe";
  }
  if (stanza.name !== "message") return true;
  if (type === "error") return true;
  for (const [name, xmlns] of IMPORTANT_PAYLOADS) {
    if (stanza.getChild(name, xmlns)) return true;
  }
  // A MUC invitation (mediated).
  const user = stanza.getChild("x", "http://jabber.org/protocol/muc#user");
  return user?.getChild("invite") !== undefined;
}

/** What an inactive session holds back. */
interface Held {
  /** In order; a presence replaced by a later one from the same sender leaves a gap. */
  stanzas: (Stanza | undefined)[];
  xml: string[];
  /** Index in `stanzas` of the latest held presence from each sender. */
  presenceAt: Map<string, number>;
}

export default function csi(module: Module) {
  const maxQueue = module.getOptionInteger("csi_queue_size", 256, { min: 1 });
  const held = new WeakMap<Session, Held>();

  module.hook("stream-features", ({ origin, features }) => {
    if (origin.username !== undefined) features.tag("csi", { xmlns: NS }).up();
  });

  function important(session: Session, stanza: Stanza): boolean {
    const r = module.fireEvent("csi-is-stanza-important", { stanza, session });
    return typeof r === "boolean" ? r : isImportant(stanza);
  }

  /** Lets everything held go out, in order. */
  function flush(session: Session) {
    const h = held.get(session);
    if (!h || h.stanzas.length === 0) return;
    const { stanzas, xml } = h;
    h.stanzas = [];
    h.xml = [];
    h.presenceAt.clear();
    for (let i = 0; i < stanzas.length; i++) {
      const stanza = stanzas[i];
      if (stanza !== undefined) session.deliver(stanza, xml[i]);
    }
  }

  function hold(session: Session, stanza: Stanza, xml: string): boolean {
    const h = held.get(session)!;
    if (important(session, stanza)) {
      flush(session);
      return false; // goes out now, after what was held
    }
    if (stanza.name === "presence") {
      // Only the latest presence of each contact matters.
      const from = stanza.attrs.from ?? "";
      const before = h.presenceAt.get(from);
      if (before !== undefined) {
        h.stanzas[before] = undefined;
        h.xml[before] = "";
      }
      h.presenceAt.set(from, h.stanzas.length);
    }
    h.stanzas.push(stanza);
    h.xml.push(xml);
    if (h.stanzas.length > maxQueue) flush(session);
    return true;
  }

  function setActive(session: Session, active: boolean) {
    if (active) {
      session.hold = undefined;
      flush(session);
      held.delete(session);
      (session.ext ??= {}).csi = "active";
      return;
    }
    if (!held.has(session)) held.set(session, { stanzas: [], xml: [], presenceAt: new Map() });
    session.hold = (stanza, xml) => hold(session, stanza, xml);
    (session.ext ??= {}).csi = "inactive";
  }

  module.hookTag(NS, "active", (origin) => {
    if (origin.type === "c2s") setActive(origin, true);
    return true;
  });
  module.hookTag(NS, "inactive", (origin) => {
    if (origin.type === "c2s") setActive(origin, false);
    return true;
  });

  // A session that ends while inactive: held messages go where messages for an
  // unavailable resource go (held presence is stale by then), ahead of what
  // stream management hands on.
  module.hook("pre-resource-unbind", ({ session }: { session: Session }) => {
    const h = held.get(session);
    if (!h) return;
    held.delete(session);
    session.hold = undefined;
    for (const stanza of h.stanzas) {
      if (stanza?.name !== "message") continue;
      try {
        const r = module.fireEvent("delivery/failure", { session, stanza });
        if (r instanceof Promise) r.catch(module.logError);
      } catch (e) {
        module.logError(e);
      }
    }
  }, 200);
}
