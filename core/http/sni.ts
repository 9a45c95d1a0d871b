/**
 * The server name a TLS client asks for (SNI, RFC 6066 §3), read from its
 * ClientHello before any TLS is done, so the HTTP guard can hand the
 * connection to the TLS endpoint holding that host's certificate.
 *
 * @example
 * ```ts
 * const name = clientHelloName(firstBytes);
 * // a string: the name; undefined: no name (or not a ClientHello); null: more bytes needed
 * ```
 * @module
 */

/** Largest TLS record (plaintext, 2^14) plus its 5-byte header. */
export const MAX_HELLO = 16384 + 5;

/**
 * The SNI host name in a ClientHello's first record: a string, `undefined`
 * when there is none (or the bytes are not a ClientHello), `null` while
 * the record is not all there yet.
 */
export function clientHelloName(b: Uint8Array): string | undefined | null {
  if (b.length < 5) return null;
  if (b[0] !== 22 || b[1] !== 3) return undefined; // not a TLS handshake record
  const recordEnd = 5 + ((b[3] << 8) | b[4]);
  if (recordEnd > MAX_HELLO) return undefined;
  if (b.length < recordEnd) return null;
  let i = 5;
  if (b[i] !== 1) return undefined; // not a ClientHello
  i += 4 + 2 + 32; // handshake type and length, client version, random
  const skip = (lengthBytes: number) => {
    if (i + lengthBytes > recordEnd) return false;
    let n = 0;
    for (let k = 0; k < lengthBytes; k++) n = (n << 8) | b[i + k];
    i += lengthBytes + n;
    return i <= recordEnd;
  };
  if (!skip(1) || !skip(2) || !skip(1)) return undefined; // session id, ciphers, compression
  if (i + 2 > recordEnd) return undefined; // no extensions
  const extensionsEnd = Math.min(recordEnd, i + 2 + ((b[i] << 8) | b[i + 1]));
  i += 2;
  while (i + 4 <= extensionsEnd) {
    const type = (b[i] << 8) | b[i + 1];
    const length = (b[i + 2] << 8) | b[i + 3];
    i += 4;
    if (type === 0) {
      // server_name: a list; the first host_name (type 0) entry is the name.
      let j = i + 2;
      const listEnd = Math.min(i + length, extensionsEnd);
      while (j + 3 <= listEnd) {
        const nameType = b[j];
        const nameLength = (b[j + 1] << 8) | b[j + 2];
        j += 3;
        if (j + nameLength > listEnd) return undefined;
        if (nameType === 0) {
          return new TextDecoder().decode(b.subarray(j, j + nameLength)).toLowerCase();
        }
        j += nameLength;
      }
      return undefined;
    }
    i += length;
  }
  return undefined;
}
