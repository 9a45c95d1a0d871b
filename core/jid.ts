// deno-lint-ignore-file no-control-regex
/**
 * JIDs (RFC 7622): splitting, normalising, joining.
 *
 * Localparts and domainparts are case-folded and NFKC-normalised; resources
 * are kept as given (NFC only). Anything invalid gives `undefined`.
 *
 * @example
 * ```ts
 * prep("Juliet@Example.COM/Balcony"); // "juliet@example.com/Balcony"
 * prep("juliet@@example.com");        // undefined
 * bare("juliet@example.com/balcony"); // "juliet@example.com"
 * ```
 * @module
 */

export interface Jid {
  node?: string;
  host: string;
  resource?: string;
}

const MAX_PART_BYTES = 1023;
const encoder = new TextEncoder();
// Characters RFC 7622 §3.3.1 forbids in a localpart, plus spaces and controls.
const BAD_NODE = /[\s"&'/:<>@\u0000-\u001f\u007f-\u009f]/;
// Whitespace, controls and separators cannot appear in a domain label.
const BAD_DOMAIN = /[\s@/\\"'<>&\u0000-\u001f\u007f-\u009f]/;
const BAD_RESOURCE = /[\u0000-\u001f\u007f-\u009f]/;
const ASCII = /^[\x20-\x7e]*$/;

function tooLong(s: string): boolean {
  if (s.length > MAX_PART_BYTES) return true;
  return !ASCII.test(s) && encoder.encode(s).length > MAX_PART_BYTES;
}

/** Splits a JID into its parts without normalising; undefined when malformed. */
export function split(jid: string): Jid | undefined {
  const slash = jid.indexOf("/");
  const hostAndNode = slash === -1 ? jid : jid.slice(0, slash);
  const resource = slash === -1 ? undefined : jid.slice(slash + 1);
  const at = hostAndNode.indexOf("@");
  const node = at === -1 ? undefined : hostAndNode.slice(0, at);
  const host = at === -1 ? hostAndNode : hostAndNode.slice(at + 1);
  if (host === "" || node === "" || resource === "") return undefined;
  if (host.includes("@")) return undefined;
  return { node, host, resource };
}

/** A normalised localpart, or undefined when invalid. */
export function prepNode(s: string): string | undefined {
  if (s === "") return undefined;
  let out = s.toLowerCase();
  if (!ASCII.test(out)) out = out.normalize("NFKC").toLowerCase();
  if (out === "" || BAD_NODE.test(out) || tooLong(out)) return undefined;
  return out;
}

/** A normalised domainpart (a trailing dot is dropped), or undefined when invalid. */
export function prepDomain(s: string): string | undefined {
  let out = s.toLowerCase();
  if (!ASCII.test(out)) out = out.normalize("NFKC").toLowerCase();
  if (out.endsWith(".")) out = out.slice(0, -1);
  if (out === "" || tooLong(out)) return undefined;
  if (out.startsWith("[")) {
    // An IPv6 literal.
    return /^\[[0-9a-f:.]+\]$/.test(out) ? out : undefined;
  }
  if (BAD_DOMAIN.test(out)) return undefined;
  for (const label of out.split(".")) {
    if (label === "" || label.length > 63) return undefined;
  }
  return out;
}

/** A resource as given (NFC), or undefined when empty or invalid. */
export function prepResource(s: string): string | undefined {
  if (s === "") return undefined;
  const out = ASCII.test(s) ? s : s.normalize("NFC");
  if (BAD_RESOURCE.test(out) || tooLong(out)) return undefined;
  return out;
}

/** The normalised form of a JID, or undefined when it is invalid. */
export function prep(jid: string): string | undefined {
  const parts = split(jid);
  if (!parts) return undefined;
  const host = prepDomain(parts.host);
  if (host === undefined) return undefined;
  let out = host;
  if (parts.node !== undefined) {
    const node = prepNode(parts.node);
    if (node === undefined) return undefined;
    out = node + "@" + host;
  }
  if (parts.resource !== undefined) {
    const resource = prepResource(parts.resource);
    if (resource === undefined) return undefined;
    out += "/" + resource;
  }
  return out;
}

/** The JID without its resource. */
export function bare(jid: string): string {
  const slash = jid.indexOf("/");
  return slash === -1 ? jid : jid.slice(0, slash);
}

/** The domainpart of a JID. */
export function hostOf(jid: string): string {
  const b = bare(jid);
  return b.slice(b.indexOf("@") + 1);
}

/** Builds a JID string from its parts. */
export function join(node: string | undefined, host: string, resource?: string): string {
  let s = node === undefined ? host : node + "@" + host;
  if (resource !== undefined) s += "/" + resource;
  return s;
}
