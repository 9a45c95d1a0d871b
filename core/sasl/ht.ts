/**
 * HT-SHA-256-NONE (draft-schmaus-kitten-sasl-ht), the token mechanism of
 * FAST (XEP-0484): one message from the client, `authcid NUL
 * HMAC-SHA-256(token, "Initiator")`, answered on success with
 * `HMAC-SHA-256(token, "Responder")`. No channel binding.
 *
 * @example
 * ```ts
 * const mech = new HtMechanism(profile); // profile.fastTokens gives the user's tokens
 * const step = await mech.step(message); // { status: "success", username, data, token }
 * ```
 * @module
 */
import { createHmac } from "node:crypto";
import type { SaslMechanism, SaslProfile, SaslStep } from "./types.ts";

const decoder = new TextDecoder("utf-8", { fatal: true });

export const HT_SHA_256_NONE = "HT-SHA-256-NONE";

// node:crypto, not WebCrypto: synchronous, and a login is two of these per token tried.
function hmac(key: Uint8Array, text: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(text).digest());
}

/** Compares in time that does not depend on where the first difference is. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export class HtMechanism implements SaslMechanism {
  readonly name = HT_SHA_256_NONE;

  constructor(private profile: SaslProfile) {}

  async step(message: Uint8Array): Promise<SaslStep> {
    const nul = message.indexOf(0);
    if (nul <= 0 || message.length - nul - 1 !== 32) {
      return { status: "failure", condition: "malformed-request", text: "Expected authcid\\0HMAC" };
    }
    let username: string;
    try {
      username = decoder.decode(message.subarray(0, nul));
    } catch {
      return { status: "failure", condition: "malformed-request", text: "Invalid UTF-8" };
    }
    const proof = message.subarray(nul + 1);
    const tokens = await this.profile.fastTokens?.(username, this.name) ?? [];
    for (const t of tokens) {
      if (sameBytes(hmac(t.key, "Initiator"), proof)) {
        return { status: "success", username, data: hmac(t.key, "Responder"), token: t.id };
      }
    }
    return { status: "failure", condition: "not-authorized", username };
  }
}
