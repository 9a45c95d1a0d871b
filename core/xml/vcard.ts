/**
 * Converting between vcard-temp (XEP-0054) and vCard4 in XML (RFC 6351, as
 * XEP-0292 carries it), field by field for what both can say: names,
 * nickname, birthday, emails, phones, addresses, URLs, organisation,
 * title, role, note, XMPP address. The photo is not converted here (PEP
 * avatars carry it). Fields only one side knows are left out.
 *
 * @example
 * ```ts
 * const v4 = toVcard4(parseXml("<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>"));
 * v4.toString(); // <vcard xmlns="urn:ietf:params:xml:ns:vcard-4.0"><fn><text>Juliet</text></fn></vcard>
 * ```
 * @module
 */
import { element, type Stanza } from "./stanza.ts";

export const VCARD_TEMP = "vcard-temp";
export const VCARD4 = "urn:ietf:params:xml:ns:vcard-4.0";

/** Simple text fields: vcard-temp name, vCard4 name, vCard4 value type. */
const TEXT_FIELDS: [string, string, string][] = [
  ["FN", "fn", "text"],
  ["NICKNAME", "nickname", "text"],
  ["BDAY", "bday", "date"],
  ["TITLE", "title", "text"],
  ["ROLE", "role", "text"],
  ["DESC", "note", "text"],
  ["URL", "url", "uri"],
];
const NAME_PARTS: [string, string][] = [
  ["FAMILY", "surname"],
  ["GIVEN", "given"],
  ["MIDDLE", "additional"],
  ["PREFIX", "prefix"],
  ["SUFFIX", "suffix"],
];
const ADDRESS_PARTS: [string, string][] = [
  ["POBOX", "pobox"],
  ["EXTADD", "ext"],
  ["STREET", "street"],
  ["LOCALITY", "locality"],
  ["REGION", "region"],
  ["PCODE", "code"],
  ["CTRY", "country"],
];

const text = (el: Stanza | undefined, name: string) => el?.getChildText(name)?.trim() ?? "";

/** The vCard4 form of a vcard-temp `<vCard/>`. */
export function toVcard4(vcard: Stanza): Stanza {
  const out = element("vcard", { xmlns: VCARD4 });
  for (const [legacy, name, type] of TEXT_FIELDS) {
    for (const f of vcard.tags()) {
      if (f.name === legacy && f.getText().trim()) {
        out.tag(name).textTag(type, f.getText().trim()).up();
      }
    }
  }
  const n = vcard.getChild("N");
  if (n && NAME_PARTS.some(([l]) => text(n, l))) {
    out.tag("n");
    for (const [l, v] of NAME_PARTS) out.textTag(v, text(n, l));
    out.up();
  }
  for (const f of vcard.tags()) {
    if (f.name === "EMAIL" && text(f, "USERID")) {
      out.tag("email").textTag("text", text(f, "USERID")).up();
    } else if (f.name === "TEL" && text(f, "NUMBER")) {
      out.tag("tel").textTag("uri", "tel:" + text(f, "NUMBER")).up();
    } else if (f.name === "ADR" && ADDRESS_PARTS.some(([l]) => text(f, l))) {
      out.tag("adr");
      for (const [l, v] of ADDRESS_PARTS) out.textTag(v, text(f, l));
      out.up();
    } else if (f.name === "ORG" && text(f, "ORGNAME")) {
      out.tag("org").textTag("text", text(f, "ORGNAME")).up();
    } else if (f.name === "JABBERID" && f.getText().trim()) {
      out.tag("impp").textTag("uri", "xmpp:" + f.getText().trim()).up();
    }
  }
  return out;
}

/** The vcard-temp fields of a vCard4 `<vcard/>` (no PHOTO). */
export function fromVcard4(vcard: Stanza): Stanza {
  const out = element("vCard", { xmlns: VCARD_TEMP });
  for (const [legacy, name, type] of TEXT_FIELDS) {
    for (const f of vcard.tags()) {
      if (f.name === name && text(f, type)) out.textTag(legacy, text(f, type));
    }
  }
  const n = vcard.getChild("n");
  if (n) {
    out.tag("N");
    for (const [l, v] of NAME_PARTS) out.textTag(l, text(n, v));
    out.up();
  }
  for (const f of vcard.tags()) {
    if (f.name === "email" && text(f, "text")) {
      out.tag("EMAIL").tag("INTERNET").up().textTag("USERID", text(f, "text")).up();
    } else if (f.name === "tel" && text(f, "uri")) {
      out.tag("TEL").textTag("NUMBER", text(f, "uri").replace(/^tel:/, "")).up();
    } else if (f.name === "adr") {
      out.tag("ADR");
      for (const [l, v] of ADDRESS_PARTS) out.textTag(l, text(f, v));
      out.up();
    } else if (f.name === "org" && text(f, "text")) {
      out.tag("ORG").textTag("ORGNAME", text(f, "text")).up();
    } else if (f.name === "impp" && text(f, "uri").startsWith("xmpp:")) {
      out.textTag("JABBERID", text(f, "uri").slice(5));
    }
  }
  return out;
}

/** The vcard-temp field names {@link fromVcard4} fills (replaced when vCard4 speaks). */
export const CONVERTED_FIELDS = new Set([
  ...TEXT_FIELDS.map(([l]) => l),
  "N",
  "EMAIL",
  "TEL",
  "ADR",
  "ORG",
  "JABBERID",
]);
