/**
 * TLS certificates: where a host's certificate is (the `ssl` option, else
 * `<certificates>/<host>.crt` and `.key`, else the data directory's
 * `certs/`), and a self-signed one made on first start when there is none.
 *
 * The self-signed certificate is an ECDSA P-256 key from WebCrypto in an
 * X.509 v3 certificate built with the small DER encoder below (no
 * dependency), valid for three years, for the host name (and 127.0.0.1 for
 * `localhost`).
 *
 * @example
 * ```ts
 * const { certPath, keyPath } = await ensureCertificate(config, "localhost");
 * ```
 * @module
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ResolvedConfig } from "../config.ts";
import { getLogger } from "../log.ts";
import { derChildren, type DerElement, derElement, pemToDer } from "./der.ts";

export interface CertificatePaths {
  certPath: string;
  keyPath: string;
}

/** Where the host's certificate and key are, if they exist. */
export function findCertificate(
  config: ResolvedConfig,
  host: string,
): CertificatePaths | undefined {
  const ssl = config.get(host, "ssl") as { certificate: string; key: string } | undefined;
  if (ssl) {
    return {
      certPath: resolve(config.configDir, ssl.certificate),
      keyPath: resolve(config.configDir, ssl.key),
    };
  }
  const dirs = [
    resolve(config.configDir, String(config.global("certificates"))),
    join(config.dataPath, "certs"),
  ];
  for (const dir of dirs) {
    const certPath = join(dir, `${host}.crt`);
    const keyPath = join(dir, `${host}.key`);
    if (existsSync(certPath) && existsSync(keyPath)) return { certPath, keyPath };
  }
  return undefined;
}

/** The host's certificate, generated self-signed into `<data_path>/certs` when none exists. */
export async function ensureCertificate(
  config: ResolvedConfig,
  host: string,
): Promise<CertificatePaths> {
  const found = findCertificate(config, host);
  if (found) return found;
  const paths = await generateSelfSigned(host, join(config.dataPath, "certs"));
  getLogger("certs").info("generated a self-signed certificate for {host} in {path}", {
    host,
    path: paths.certPath,
  });
  return paths;
}

// --- DER encoding --------------------------------------------------------

function length(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return [0x80 | bytes.length, ...bytes];
}

function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const size = content.reduce((n, c) => n + c.length, 0);
  const head = [tag, ...length(size)];
  const out = new Uint8Array(head.length + size);
  out.set(head);
  let at = head.length;
  for (const c of content) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const seq = (...c: Uint8Array[]) => tlv(0x30, ...c);
const set = (...c: Uint8Array[]) => tlv(0x31, ...c);
const utf8 = (s: string) => tlv(0x0c, new TextEncoder().encode(s));
const octets = (b: Uint8Array) => tlv(0x04, b);
const bits = (b: Uint8Array) => tlv(0x03, new Uint8Array([0]), b);
const explicit = (n: number, c: Uint8Array) => tlv(0xa0 | n, c);

function integer(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  return trimmed[0] & 0x80 ? tlv(0x02, new Uint8Array([0]), trimmed) : tlv(0x02, trimmed);
}

function oid(dotted: string): Uint8Array {
  const parts = dotted.split(".").map(Number);
  const out = [40 * parts[0] + parts[1]];
  for (const p of parts.slice(2)) {
    const chunk = [p & 0x7f];
    let v = Math.floor(p / 128);
    while (v > 0) {
      chunk.unshift(0x80 | (v & 0x7f));
      v = Math.floor(v / 128);
    }
    out.push(...chunk);
  }
  return tlv(0x06, new Uint8Array(out));
}

function time(d: Date): Uint8Array {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const compact = iso.slice(0, 19).replace(/[-:T]/g, "") + "Z";
  // UTCTime up to 2049, GeneralizedTime after (RFC 5280 §4.1.2.5).
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, new TextEncoder().encode(compact.slice(2)))
    : tlv(0x18, new TextEncoder().encode(compact));
}

function pem(label: string, der: Uint8Array): string {
  const b64 = der.toBase64();
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
}

/** WebCrypto's raw r||s ECDSA signature as DER `SEQUENCE { INTEGER r, INTEGER s }`. */
function derSignature(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  return seq(integer(raw.subarray(0, half)), integer(raw.subarray(half)));
}

const ECDSA_SHA256 = "1.2.840.10045.4.3.2";

/** Writes `<host>.crt` and `<host>.key` (mode 0600) into `dir`. */
export async function generateSelfSigned(host: string, dir: string): Promise<CertificatePaths> {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] &= 0x7f;
  const name = seq(set(seq(oid("2.5.4.3"), utf8(host))));
  const now = Date.now();
  const altNames = [tlv(0x82, new TextEncoder().encode(host))];
  if (host === "localhost") altNames.push(tlv(0x87, new Uint8Array([127, 0, 0, 1])));
  const tbs = seq(
    explicit(0, integer(new Uint8Array([2]))),
    integer(serial),
    seq(oid(ECDSA_SHA256)),
    name,
    seq(time(new Date(now - 86_400_000)), time(new Date(now + 3 * 365 * 86_400_000))),
    name,
    spki,
    explicit(
      3,
      seq(
        seq(oid("2.5.29.17"), octets(seq(...altNames))),
        seq(oid("2.5.29.19"), octets(seq())),
      ),
    ),
  );
  const signature = new Uint8Array(
    await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      keys.privateKey,
      tbs as Uint8Array<ArrayBuffer>,
    ),
  );
  const cert = seq(tbs, seq(oid(ECDSA_SHA256)), bits(derSignature(signature)));
  mkdirSync(dir, { recursive: true });
  const certPath = join(dir, `${host}.crt`);
  const keyPath = join(dir, `${host}.key`);
  await Deno.writeTextFile(keyPath, pem("PRIVATE KEY", pkcs8), { mode: 0o600 });
  await Deno.writeTextFile(certPath, pem("CERTIFICATE", cert));
  return { certPath, keyPath };
}

// --- reading certificates (for `check`) ----------------------------------

function parseTime(der: Uint8Array, el: DerElement): Date {
  let s = new TextDecoder().decode(der.subarray(el.start, el.end));
  if (el.tag === 0x17) s = (Number(s.slice(0, 2)) < 50 ? "20" : "19") + s;
  const [y, mo, d, h, mi, se] = [0, 4, 6, 8, 10, 12].map((i, k) =>
    Number(s.slice(i, k === 0 ? 4 : i + 2))
  );
  return new Date(Date.UTC(y, mo - 1, d, h, mi, se));
}

/** Subject common name and expiry of a PEM certificate (RSA or EC). */
export function certificateInfo(pemText: string): { subjectCN?: string; notAfter: Date } {
  const der = pemToDer(pemText);
  const tbs = derChildren(der, derElement(der, 0))[0];
  const fields = derChildren(der, tbs);
  const offset = fields[0].tag === 0xa0 ? 1 : 0; // optional [0] version
  const validity = derChildren(der, fields[offset + 3]);
  const subject = fields[offset + 4];
  let subjectCN: string | undefined;
  const cnOid = "85 4 3"; // 2.5.4.3 in DER
  for (const rdn of derChildren(der, subject)) {
    for (const attr of derChildren(der, rdn)) {
      const [type, value] = derChildren(der, attr);
      if (Array.from(der.subarray(type.start, type.end)).join(" ") === cnOid) {
        subjectCN = new TextDecoder().decode(der.subarray(value.start, value.end));
      }
    }
  }
  return { subjectCN, notAfter: parseTime(der, validity[1]) };
}
