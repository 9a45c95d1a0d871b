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
import type { SaslMechanism, SaslProfile, SaslStep } from "./types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export const HT_SHA_256_NONE = "HT-SHA-256-NONE";

async function hmac(key: Uint8Array, text: string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    [
      "sign",
    ],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, encoder.encode(text)));
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
      if (sameBytes(await hmac(t.key, "Initiator"), proof)) {
        return { status: "success", username, data: await hmac(t.key, "Responder"), token: t.id };
      }
    }
    return { status: "failure", condition: "not-authorized", username };
  }
}
