/**
 * Reading DER (the binary form of X.509 certificates): just enough to walk
 * a certificate's structure. Shared by the certificate checks and the
 * channel-binding hash.
 *
 * @example
 * ```ts
 * const der = pemToDer(pem);
 * const [tbs, algorithm] = derChildren(der, derElement(der, 0));
 * ```
 * @module
 */

/** One DER element: its tag and where its content starts and ends. */
export interface DerElement {
  tag: number;
  start: number;
  end: number;
}

/** The element starting at byte `at`. */
export function derElement(der: Uint8Array, at: number): DerElement {
  let len = der[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i];
    start += n;
  }
  if (start + len > der.length) throw new Error("truncated DER");
  return { tag: der[at], start, end: start + len };
}

/** The elements inside a constructed element. */
export function derChildren(der: Uint8Array, el: DerElement): DerElement[] {
  const out: DerElement[] = [];
  for (let at = el.start; at < el.end;) {
    const c = derElement(der, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

/** The DER bytes of the first CERTIFICATE block of a PEM text. */
export function pemToDer(pem: string): Uint8Array {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error("no CERTIFICATE block in PEM");
  return Uint8Array.fromBase64(m[1].replace(/\s+/g, ""));
}
