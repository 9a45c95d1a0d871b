/**
 * Entity Capabilities (XEP-0115): the verification string (`ver`) of a
 * disco#info result, as §5.1 generates it: identities
 * (`category/type/lang/name`), features, then the extended information forms
 * (XEP-0128) sorted by FORM_TYPE with their fields sorted by `var` and each
 * field's values sorted, every item followed by `<`; hashed (SHA-1 or
 * SHA-256) and base64-encoded. Sorting is by the UTF-8 bytes (`i;octet`).
 *
 * An answer the processing rules of §5.4 call ill-formed (the same identity
 * or feature twice, two forms with one FORM_TYPE, a FORM_TYPE with differing
 * values) rejects with a {@link CapsError}: its features may serve the entity
 * that sent it, but must never be cached under a `ver`. So do answers open to
 * the known preimage attack on this string (a `<` inside any item, a `/` in a
 * category, type or language, an empty category or type; see the XEP's
 * security considerations): with them, a different set of features can hash
 * to someone else's `ver`. A form whose FORM_TYPE is missing or not hidden is
 * left out (§5.4 rule 3.6).
 *
 * @example
 * ```ts
 * const query = parseXml(
 *   "<query xmlns='http://jabber.org/protocol/disco#info'>" +
 *     "<identity category='client' type='pc' name='Exodus 0.9.1'/>" +
 *     "<feature var='http://jabber.org/protocol/caps'/>…</query>",
 * );
 * await capsVer(query); // "QgayPKawpkPSDYmwT/WM94uAlu0=" for the XEP's example
 * ```
 * @module
 */
import type { Stanza } from "./stanza.ts";

export const CAPS_NS = "http://jabber.org/protocol/caps";
export const DISCO_INFO_NS = "http://jabber.org/protocol/disco#info";
const DATAFORM_NS = "jabber:x:data";

/** The hash functions a `ver` may use (IANA names, as in the `hash` attribute). */
const ALGORITHMS: Record<string, string> = { "sha-1": "SHA-1", "sha-256": "SHA-256" };

/** Whether `capsVer` can compute a `ver` with this `hash` attribute value. */
export function supportedHash(hash: string): boolean {
  return Object.hasOwn(ALGORITHMS, hash.toLowerCase());
}

/** A disco#info answer no `ver` may be trusted for (or a hash this code does not know). */
export class CapsError extends Error {
  override name = "CapsError";
}

const encoder = new TextEncoder();

/** `i;octet` order: by UTF-8 bytes (UTF-16 code units differ beyond U+FFFF). */
export function compareOctets(a: string, b: string): number {
  if (a === b) return 0;
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function compareTuples(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    const c = compareOctets(a[i], b[i]);
    if (c !== 0) return c;
  }
  return 0;
}

/** Rejects an item that would make the string ambiguous. */
function plain(s: string, what: string): string {
  if (s.includes("<")) throw new CapsError(`${what} contains "<"`);
  return s;
}

function noDuplicates(sorted: string[], what: string): void {
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new CapsError(`${what} listed twice: ${sorted[i]}`);
  }
}

/** Child elements named `name` in namespace `ns` (a child without `xmlns` is in its parent's). */
function children(el: Stanza, name: string, ns: string): Stanza[] {
  const own = el.attrs.xmlns;
  return el.tags().filter((c) => c.name === name && (c.attrs.xmlns ?? own) === ns);
}

function values(field: Stanza): string[] {
  return children(field, "value", DATAFORM_NS).map((v) => v.getText());
}

/** The forms' part of the string, or throws for an ill-formed answer. */
function formsPart(query: Stanza): string {
  const forms: Array<{ type: string; text: string }> = [];
  for (const x of children(query, "x", DATAFORM_NS)) {
    const fields = children(x, "field", DATAFORM_NS);
    const formType = fields.filter((f) => f.attrs.var === "FORM_TYPE");
    if (formType.length > 1) throw new CapsError("a form has two FORM_TYPE fields");
    if (formType.length === 0 || formType[0].attrs.type !== "hidden") continue; // §5.4 3.6
    const typeValues = new Set(values(formType[0]));
    if (typeValues.size !== 1) throw new CapsError("a FORM_TYPE without one value");
    const type = plain([...typeValues][0], "a FORM_TYPE");
    const rest: Array<{ name: string; values: string[] }> = [];
    for (const f of fields) {
      const name = f.attrs.var;
      if (name === "FORM_TYPE") continue;
      if (name === undefined) throw new CapsError(`a field of form ${type} has no var`);
      rest.push({
        name: plain(name, "a field name"),
        values: values(f).map((v) => plain(v, "a field value")).sort(compareOctets),
      });
    }
    rest.sort((a, b) => compareOctets(a.name, b.name));
    noDuplicates(rest.map((f) => f.name), `a field of form ${type}`);
    let text = type + "<";
    for (const f of rest) text += f.name + "<" + f.values.map((v) => v + "<").join("");
    forms.push({ type, text });
  }
  forms.sort((a, b) => compareOctets(a.type, b.type));
  noDuplicates(forms.map((f) => f.type), "a FORM_TYPE");
  return forms.map((f) => f.text).join("");
}

/** The features (`<feature var='…'/>`) a disco#info `<query/>` lists. */
export function discoFeatures(query: Stanza): Set<string> {
  const out = new Set<string>();
  for (const f of children(query, "feature", DISCO_INFO_NS)) {
    if (f.attrs.var !== undefined) out.add(f.attrs.var);
  }
  return out;
}

/**
 * The XEP-0115 verification string of a disco#info `<query/>`, base64 of
 * its `hash` ("sha-1" or "sha-256"). Rejects with a {@link CapsError} for
 * an answer that must not be cached (see the module documentation) or an
 * unknown hash.
 */
export async function capsVer(query: Stanza, hash = "sha-1"): Promise<string> {
  if (!supportedHash(hash)) throw new CapsError(`unsupported hash ${hash}`);
  const algorithm = ALGORITHMS[hash.toLowerCase()];
  if (query.name !== "query" || query.attrs.xmlns !== DISCO_INFO_NS) {
    throw new CapsError("not a disco#info query");
  }
  const identities: string[][] = [];
  for (const id of children(query, "identity", DISCO_INFO_NS)) {
    const { category = "", type = "", name = "" } = id.attrs;
    const lang = id.attrs["xml:lang"] ?? "";
    if (!category || !type) throw new CapsError("an identity without category or type");
    for (const part of [category, type, lang]) {
      if (part.includes("/")) throw new CapsError(`an identity part contains "/": ${part}`);
      plain(part, "an identity");
    }
    identities.push([category, type, lang, plain(name, "an identity name")]);
  }
  identities.sort(compareTuples);
  const idStrings = identities.map((i) => i.join("/"));
  noDuplicates(idStrings, "an identity");

  const features: string[] = [];
  for (const f of children(query, "feature", DISCO_INFO_NS)) {
    const v = f.attrs.var;
    if (v === undefined) throw new CapsError("a feature without var");
    features.push(plain(v, "a feature"));
  }
  features.sort(compareOctets);
  noDuplicates(features, "a feature");

  const s = idStrings.map((i) => i + "<").join("") + features.map((f) => f + "<").join("") +
    formsPart(query);
  const digest = new Uint8Array(await crypto.subtle.digest(algorithm, encoder.encode(s)));
  let binary = "";
  for (const b of digest) binary += String.fromCharCode(b);
  return btoa(binary);
}
