/**
 * A compact JSON form of a stanza for storage, independent of the XML
 * parser: an element is `[name, attrs, ...children]`, a child is a string
 * (text) or such an array. Attributes whose value is `undefined` are left out.
 *
 * @example
 * ```ts
 * encodeStanza(message({ to: "romeo@example.com" }, "hi"));
 * // '["message",{"to":"romeo@example.com"},["body",{},"hi"]]'
 * decodeStanza('["presence",{}]').name; // "presence"
 * ```
 * @module
 */
import { type Attrs, type Node, Stanza } from "../xml/stanza.ts";
import { StorageError } from "./types.ts";

type Encoded = [string, Attrs, ...(Encoded | string)[]];

function toArray(s: Stanza): Encoded {
  const out: Encoded = [s.name, s.attrs];
  for (const c of s.children) out.push(typeof c === "string" ? c : toArray(c));
  return out;
}

function fromArray(a: unknown): Stanza {
  if (!Array.isArray(a) || typeof a[0] !== "string" || typeof a[1] !== "object" || !a[1]) {
    throw new StorageError("internal-server-error", "stored stanza is corrupt");
  }
  const attrs: Attrs = {};
  for (const [k, v] of Object.entries(a[1] as Record<string, unknown>)) {
    if (typeof v !== "string") {
      throw new StorageError("internal-server-error", "stored stanza is corrupt");
    }
    attrs[k] = v;
  }
  const children: Node[] = [];
  for (let i = 2; i < a.length; i++) {
    children.push(typeof a[i] === "string" ? a[i] : fromArray(a[i]));
  }
  return new Stanza(a[0], attrs, children);
}

/**
 * The stanza as compact JSON text.
 *
 * @example
 * ```ts
 * encodeStanza(new Stanza("ping", { xmlns: "urn:xmpp:ping" })); // '["ping",{"xmlns":"urn:xmpp:ping"}]'
 * ```
 */
export function encodeStanza(s: Stanza): string {
  return JSON.stringify(toArray(s));
}

/**
 * A new stanza from {@link encodeStanza}'s text; throws a `StorageError` on
 * anything else.
 *
 * @example
 * ```ts
 * decodeStanza('["body",{},"hi"]').getText(); // "hi"
 * ```
 */
export function decodeStanza(json: string): Stanza {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new StorageError("internal-server-error", "stored stanza is corrupt", { cause: e });
  }
  return fromArray(parsed);
}
