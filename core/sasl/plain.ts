/**
 * SASL PLAIN (RFC 4616), server side: `[authzid] NUL authcid NUL passwd`.
 *
 * @example
 * ```ts
 * const mech = new PlainMechanism({ testPassword: async (u, p) => u === "juliet" && p === "pw" });
 * await mech.step(new TextEncoder().encode("\0juliet\0pw")); // { status: "success", username: "juliet" }
 * ```
 * @module
 */
import type { SaslMechanism, SaslProfile, SaslStep } from "./types.ts";
import { saslprep } from "./saslprep.ts";

const decoder = new TextDecoder("utf-8", { fatal: true });

export class PlainMechanism implements SaslMechanism {
  readonly name = "PLAIN";

  constructor(private profile: SaslProfile) {}

  async step(message: Uint8Array): Promise<SaslStep> {
    if (message.length === 0) return { status: "challenge", data: new Uint8Array(0) };
    let text: string;
    try {
      text = decoder.decode(message);
    } catch {
      return { status: "failure", condition: "malformed-request", text: "Invalid UTF-8" };
    }
    const parts = text.split("\0");
    if (parts.length !== 3) {
      return {
        status: "failure",
        condition: "malformed-request",
        text: "Expected authzid\\0authcid\\0password",
      };
    }
    const [authzid, rawUser, rawPassword] = parts;
    const username = saslprep(rawUser);
    const password = saslprep(rawPassword);
    if (!username || password === undefined || password === "") {
      return {
        status: "failure",
        condition: "malformed-request",
        text: "Invalid username or password",
      };
    }
    if (authzid && authzid !== username && !authzid.startsWith(username + "@")) {
      return { status: "failure", condition: "invalid-authzid", username };
    }
    if (!this.profile.testPassword || !await this.profile.testPassword(username, password)) {
      return { status: "failure", condition: "not-authorized", username };
    }
    return { status: "success", username };
  }
}
