/**
 * The shapes SASL is made of: what an auth provider offers, a mechanism
 * (a small state machine fed the decoded payloads of `<auth/>` and
 * `<response/>`), and the steps it answers with. The mechanisms and the
 * module that runs them share these; nothing here depends on either.
 *
 * @example
 * ```ts
 * const step: SaslStep = { status: "failure", condition: "not-authorized", username: "juliet" };
 * ```
 * @module
 */
export type ScramHash = "SHA-1" | "SHA-256";

/** What the server stores instead of a password, for SCRAM. */
export interface ScramCredentials {
  salt: string; // base64
  iterations: number;
  storedKey: string; // base64
  serverKey: string; // base64
}

/** What an auth provider offers SASL. */
export interface SaslProfile {
  /** For PLAIN. */
  testPassword?(username: string, password: string): Promise<boolean>;
  /** For SCRAM; null when there is no such user. */
  scramCredentials?(username: string, hash: ScramHash): Promise<ScramCredentials | null>;
  /** For FAST token mechanisms: the keys of the user's valid tokens for one mechanism. */
  fastTokens?(username: string, mechanism: string): Promise<{ id: string; key: Uint8Array }[]>;
}

export interface ChannelBinding {
  type: "tls-server-end-point";
  data: Uint8Array;
}

export type SaslCondition =
  | "not-authorized"
  | "malformed-request"
  | "invalid-authzid"
  | "invalid-mechanism"
  | "encryption-required"
  | "temporary-auth-failure"
  | "credentials-expired"
  | "account-disabled"
  | "incorrect-encoding"
  | "aborted";

export type SaslStep =
  | { status: "challenge"; data: Uint8Array }
  | {
    status: "success";
    username: string;
    data?: Uint8Array;
    /** The FAST token that authenticated, when one did. */
    token?: string;
  }
  | {
    status: "failure";
    condition: SaslCondition;
    text?: string;
    /** Who tried, when the mechanism got that far (for the log). */
    username?: string;
  };

export interface SaslMechanism {
  readonly name: string;
  step(message: Uint8Array): Promise<SaslStep>;
}
