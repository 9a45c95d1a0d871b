/**
 * Channel binding data for SCRAM-…-PLUS: `tls-server-end-point` (RFC 5929
 * §4), the hash of the server's certificate. (Deno's TLS has no keying
 * material exporter, so `tls-exporter` cannot be offered.)
 *
 * @example
 * ```ts
 * const data = await tlsServerEndPoint(pemToDer(await Deno.readTextFile("cert.pem")));
 * ```
 * @module
 */

/** The DER bytes of the first CERTIFICATE block of a PEM text. */
export function pemToDer(pem: string): Uint8Array {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error("no CERTIFICATE block in PEM");
  return Uint8Array.from(atob(m[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
}

/** One DER element: where its content starts and ends. */
function element(der: Uint8Array, at: number): { tag: number; start: number; end: number } {
  const tag = der[at];
  let len = der[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i];
    start += n;
  }
  if (start + len > der.length) throw new Error("truncated DER");
  return { tag, start, end: start + len };
}

function oidToString(bytes: Uint8Array): string {
  const parts = [Math.floor(bytes[0] / 40), bytes[0] % 40];
  let v = 0;
  for (let i = 1; i < bytes.length; i++) {
    v = v * 128 + (bytes[i] & 0x7f);
    if (!(bytes[i] & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

/** The OID of a certificate's signatureAlgorithm. */
export function signatureAlgorithm(der: Uint8Array): string {
  const cert = element(der, 0); // Certificate ::= SEQUENCE
  const tbs = element(der, cert.start); // tbsCertificate
  const algo = element(der, tbs.end); // signatureAlgorithm ::= SEQUENCE { OID, … }
  const oid = element(der, algo.start);
  if (cert.tag !== 0x30 || algo.tag !== 0x30 || oid.tag !== 0x06) {
    throw new Error("not an X.509 certificate");
  }
  return oidToString(der.subarray(oid.start, oid.end));
}

const HASH_BY_OID: Record<string, string> = {
  "1.2.840.10045.4.3.3": "SHA-384", // ecdsa-with-SHA384
  "1.2.840.10045.4.3.4": "SHA-512", // ecdsa-with-SHA512
  "1.2.840.113549.1.1.12": "SHA-384", // sha384WithRSAEncryption
  "1.2.840.113549.1.1.13": "SHA-512", // sha512WithRSAEncryption
};

/** RFC 5929 §4.1: the certificate's signature hash, SHA-256 for MD5, SHA-1 and the rest. */
export async function tlsServerEndPoint(certDer: Uint8Array): Promise<Uint8Array> {
  const hash = HASH_BY_OID[signatureAlgorithm(certDer)] ?? "SHA-256";
  return new Uint8Array(await crypto.subtle.digest(hash, certDer as Uint8Array<ArrayBuffer>));
}
