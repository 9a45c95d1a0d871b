/**
 * SCRAM-SHA-256 for `npm:@xmpp/client` (which ships SCRAM-SHA-1 only), as a
 * mechanism in the `saslmechanisms` shape its SASL factory takes, built on
 * Cadence's own {@link ScramClient}.
 *
 * @example
 * ```ts
 * const xmpp = client({ ... });
 * useScramSha256(xmpp);
 * ```
 * @module
 */
import { ScramClient } from "../../core/sasl/scram.ts";

interface Credentials {
  username: string;
  password: string;
}

class ScramSha256 {
  static readonly mechName = "SCRAM-SHA-256";
  readonly name = "SCRAM-SHA-256";
  readonly clientFirst = true;
  private client: ScramClient | undefined;
  private serverFirst: string | undefined;

  response(cred: Credentials): string | Promise<string> {
    if (!this.client) {
      this.client = new ScramClient("SHA-256", cred.username, cred.password);
      return this.client.first();
    }
    if (this.serverFirst !== undefined) {
      const first = this.serverFirst;
      this.serverFirst = undefined;
      return this.client.final(first);
    }
    return "";
  }

  challenge(chal: string): this {
    this.serverFirst = chal;
    return this;
  }
}

/** Registers SCRAM-SHA-256 with an @xmpp/client instance. */
// deno-lint-ignore no-explicit-any
export function useScramSha256(xmpp: any): void {
  xmpp.saslFactory.use("SCRAM-SHA-256", ScramSha256);
}
