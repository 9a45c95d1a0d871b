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
import { derChildren, derElement, pemToDer } from "../net/der.ts";

export { pemToDer };

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
  const cert = derElement(der, 0); // Certificate ::= SEQUENCE { tbs, signatureAlgorithm, … }
  const [, algo] = derChildren(der, cert);
  const oid = algo && derElement(der, algo.start);
  if (cert.tag !== 0x30 || algo?.tag !== 0x30 || oid.tag !== 0x06) {
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
