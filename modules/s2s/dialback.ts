/**
 * Server dialback keys (XEP-0220 with XEP-0185): a key proves that the
 * server which opened a stream speaks for its domain, without anything
 * stored — it is derived from a secret of this process, the two domains
 * and the stream id, so the authoritative server can check it when asked
 * (`<db:verify/>`) and nobody else can make one.
 *
 * @example
 * ```ts
 * const key = dialbackKey(secret, "receiving.example", "originating.example", streamId);
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export const DIALBACK_NS = "jabber:server:dialback";
/** The stream feature saying dialback is offered, with errors (XEP-0220 §2.4). */
export const DIALBACK_FEATURE_NS = "urn:xmpp:features:dialback";

/** XEP-0185: HMAC-SHA256 keyed with SHA-256(secret) over "receiving originating streamid", hex. */
export function dialbackKey(
  secret: string,
  receiving: string,
  originating: string,
  streamId: string,
): string {
  const key = createHash("sha256").update(secret).digest("hex");
  return createHmac("sha256", key).update(`${receiving} ${originating} ${streamId}`).digest("hex");
}

/** Whether `key` is the one this process would have made (in constant time). */
export function checkKey(
  secret: string,
  key: string,
  receiving: string,
  originating: string,
  streamId: string,
): boolean {
  const expected = Buffer.from(dialbackKey(secret, receiving, originating, streamId));
  const given = Buffer.from(key.trim().toLowerCase());
  return given.length === expected.length && timingSafeEqual(given, expected);
}
