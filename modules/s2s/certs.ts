/**
 * Is a remote server's certificate good for a domain? Two questions, as
 * Prosody's certificate checks ask them:
 *
 * - **Trust** (`verifyChain`): the certificate chains, signature by
 *   signature, to one of the trusted roots (`s2s_cafile`, else the system's
 *   bundle), and every link is within its validity dates. Revocation and
 *   name constraints are not checked (Prosody does not check revocation either).
 * - **Identity** (`certIdentities`, `certMatchesDomain`; RFC 6125 with RFC
 *   6120 §13.7.1.4 and RFC 7590): the domain is one of the certificate's
 *   XmppAddr (id-on-xmppAddr), SRV-ID (`_xmpp-server.domain` or
 *   `_xmpps-server.domain`) or DNS-ID names, where a DNS-ID may be a
 *   wildcard only as the whole leftmost label (`*.example.com` matches
 *   `chat.example.com`, not `example.com` nor `a.b.example.com`); the
 *   subject's common name counts only in a certificate with none of those.
 *
 * @example
 * ```ts
 * const ids = certIdentities(der);
 * const good = certMatchesDomain(ids, "example.com") &&
 *   verifyChain([der], trustAnchors()).ok;
 * ```
 * @module
 */
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { derChildren, type DerElement, derElement } from "../../core/net/der.ts";

/** The names a certificate carries, as RFC 6125 sorts them. */
export interface CertIdentities {
  dnsIds: string[];
  /** SRV-IDs without their service label's underscore stripped: "_xmpp-server.example.com". */
  srvIds: string[];
  xmppAddrs: string[];
  /** Subject common names (used only when the lists above are empty). */
  commonNames: string[];
}

const OID_SAN = "551d11"; // 2.5.29.17 subjectAltName
const OID_CN = "550403"; // 2.5.4.3 commonName
const OID_XMPP_ADDR = "2b06010505070805"; // 1.3.6.1.5.5.7.8.5 id-on-xmppAddr
const OID_SRV_NAME = "2b06010505070807"; // 1.3.6.1.5.5.7.8.7 id-on-dnsSRV

const hex = (der: Uint8Array, el: DerElement) =>
  Array.from(der.subarray(el.start, el.end), (b) => b.toString(16).padStart(2, "0")).join("");
const text = (der: Uint8Array, el: DerElement) =>
  new TextDecoder().decode(der.subarray(el.start, el.end));

/** The identities in a DER certificate; throws on a certificate it cannot read. */
export function certIdentities(der: Uint8Array): CertIdentities {
  const ids: CertIdentities = { dnsIds: [], srvIds: [], xmppAddrs: [], commonNames: [] };
  const [tbsEl] = derChildren(der, derElement(der, 0));
  const tbs = derChildren(der, tbsEl);
  const at = tbs[0]?.tag === 0xa0 ? 1 : 0; // [0] version is optional
  const subject = tbs[at + 4];
  if (!subject || subject.tag !== 0x30) throw new Error("not a certificate");
  for (const rdn of derChildren(der, subject)) {
    for (const atv of derChildren(der, rdn)) {
      const [oid, value] = derChildren(der, atv);
      if (oid && value && hex(der, oid) === OID_CN) ids.commonNames.push(text(der, value));
    }
  }
  const extensions = tbs.find((el) => el.tag === 0xa3);
  if (!extensions) return ids;
  for (const ext of derChildren(der, derChildren(der, extensions)[0])) {
    const parts = derChildren(der, ext);
    if (hex(der, parts[0]) !== OID_SAN) continue;
    const value = parts[parts.length - 1]; // (after the optional "critical" flag)
    for (const name of derChildren(der, derElement(der, value.start))) {
      if (name.tag === 0x82) ids.dnsIds.push(text(der, name)); // [2] dNSName
      if (name.tag !== 0xa0) continue; // [0] otherName: type-id, [0] EXPLICIT value
      const [typeId, wrapped] = derChildren(der, name);
      if (!typeId || !wrapped) continue;
      const inner = derElement(der, wrapped.start);
      const kind = hex(der, typeId);
      if (kind === OID_XMPP_ADDR) ids.xmppAddrs.push(text(der, inner));
      if (kind === OID_SRV_NAME) ids.srvIds.push(text(der, inner));
    }
  }
  return ids;
}

/** Whether the certificate's names cover `domain` (lower-case A-labels compared). */
export function certMatchesDomain(ids: CertIdentities, domain: string): boolean {
  const d = domain.toLowerCase().replace(/\.$/, "");
  if (ids.xmppAddrs.some((a) => a.toLowerCase() === d)) return true;
  if (
    ids.srvIds.some((s) => {
      const id = s.toLowerCase();
      return id === `_xmpp-server.${d}` || id === `_xmpps-server.${d}`;
    })
  ) return true;
  const names = ids.dnsIds.length || ids.srvIds.length || ids.xmppAddrs.length
    ? ids.dnsIds
    : ids.commonNames;
  return names.some((n) => dnsIdMatches(n.toLowerCase().replace(/\.$/, ""), d));
}

function dnsIdMatches(id: string, domain: string): boolean {
  if (!id.startsWith("*.")) return id === domain;
  const rest = id.slice(2);
  // "*" alone as the leftmost label, over at least two more labels; one label matched.
  if (rest.includes("*") || !rest.includes(".")) return false;
  const dot = domain.indexOf(".");
  return dot > 0 && domain.slice(dot + 1) === rest;
}

/** The outcome of checking a chain: `reason` says why it is not trusted. */
export type ChainCheck = { ok: true } | { ok: false; reason: string };

const MAX_DEPTH = 6;

/**
 * Checks that `chain` (DER, the peer's certificate first, then what it sent
 * as intermediates) leads to one of `anchors`.
 */
export function verifyChain(
  chain: Uint8Array[],
  anchors: X509Certificate[],
  now = Date.now(),
): ChainCheck {
  if (chain.length === 0) return { ok: false, reason: "no certificate" };
  let certs: X509Certificate[];
  try {
    certs = chain.map((der) => new X509Certificate(der));
  } catch (e) {
    return { ok: false, reason: `unreadable certificate (${(e as Error).message})` };
  }
  const inDates = (c: X509Certificate) =>
    Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
  const signedBy = (c: X509Certificate, issuer: X509Certificate) => {
    try {
      return c.checkIssued(issuer) && c.verify(issuer.publicKey);
    } catch {
      return false;
    }
  };
  /** Whether `issuer` may vouch for `cur`, with `below` CA certificates under it. */
  const mayIssue = (issuer: X509Certificate, below: number) => {
    const limit = pathLength(new Uint8Array(issuer.raw));
    return issuer.ca && (limit === undefined || below <= limit);
  };
  let cur = certs[0];
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (!inDates(cur)) {
      return {
        ok: false,
        reason: depth === 0
          ? "certificate expired or not yet valid"
          : "an issuer's certificate expired",
      };
    }
    // A root of ours, in its dates, that may issue (or the very certificate, pinned).
    const c = cur;
    if (anchors.some((a) => a.raw.equals(c.raw))) return { ok: true };
    if (anchors.some((a) => inDates(a) && mayIssue(a, depth) && signedBy(c, a))) {
      return { ok: true };
    }
    const next = certs.slice(1).find((i) =>
      i !== c && inDates(i) && mayIssue(i, depth) && signedBy(c, i)
    );
    if (!next) {
      const reason = anchors.some((a) => signedBy(c, a))
        ? "the root certificate expired or may not issue this one"
        : signedBy(c, c)
        ? "self-signed certificate"
        : "issuer not trusted";
      return { ok: false, reason };
    }
    cur = next;
  }
  return { ok: false, reason: "certificate chain too long" };
}

const OID_BASIC_CONSTRAINTS = "551d13"; // 2.5.29.19

/** A CA certificate's pathLenConstraint (how many CAs may stand below it), if it sets one. */
export function pathLength(der: Uint8Array): number | undefined {
  const [tbsEl] = derChildren(der, derElement(der, 0));
  const extensions = derChildren(der, tbsEl).find((el) => el.tag === 0xa3);
  if (!extensions) return undefined;
  for (const ext of derChildren(der, derChildren(der, extensions)[0])) {
    const parts = derChildren(der, ext);
    if (hex(der, parts[0]) !== OID_BASIC_CONSTRAINTS) continue;
    const value = parts[parts.length - 1];
    const fields = derChildren(der, derElement(der, value.start));
    const n = fields.find((f) => f.tag === 0x02); // INTEGER pathLenConstraint
    if (!n) return undefined;
    let v = 0;
    for (let i = n.start; i < n.end; i++) v = v * 256 + der[i];
    return v;
  }
  return undefined;
}

const SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/**
 * The trusted roots: those of `cafile` (PEM, as Prosody's `ssl.cafile`),
 * else the system's bundle, else the roots Deno ships.
 */
export function trustAnchors(cafile?: string): X509Certificate[] {
  const pems = cafile
    ? splitPem(readFileSync(cafile, "utf8"))
    : existsSync(SYSTEM_BUNDLE)
    ? splitPem(readFileSync(SYSTEM_BUNDLE, "utf8"))
    : [...rootCertificates];
  if (cafile && pems.length === 0) throw new Error(`s2s_cafile ${cafile}: no certificate in it`);
  const out: X509Certificate[] = [];
  for (const pem of pems) {
    try {
      out.push(new X509Certificate(pem));
    } catch { /* a bundle may hold a certificate this runtime cannot read: skip it */ }
  }
  return out;
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
