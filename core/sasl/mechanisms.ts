/**
 * SASL mechanisms on offer and their creation: what the saslauth module
 * uses. A mechanism is a small state machine fed the decoded payloads of
 * `<auth/>` and `<response/>`.
 *
 * @example
 * ```ts
 * availableMechanisms(profile, { secure: true, allowUnencryptedPlain: false, channelBinding });
 * // ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
 * const mech = createMechanism("SCRAM-SHA-1", profile, { channelBinding });
 * ```
 * @module
 */
import { PlainMechanism } from "./plain.ts";
import { ScramMechanism } from "./scram.ts";
import { HT_SHA_256_NONE, HtMechanism } from "./ht.ts";
import type { ChannelBinding, SaslMechanism, SaslProfile } from "./types.ts";

export type {
  ChannelBinding,
  SaslCondition,
  SaslMechanism,
  SaslProfile,
  SaslStep,
  ScramCredentials,
  ScramHash,
} from "./types.ts";

/** The mechanisms to offer, strongest first, less the `disabled` ones. */
export function availableMechanisms(
  profile: SaslProfile,
  opts: {
    secure: boolean;
    allowUnencryptedPlain: boolean;
    channelBinding?: ChannelBinding;
    /** Names not to offer (`disable_sasl_mechanisms`), upper case. */
    disabled?: Set<string>;
  },
): string[] {
  const out: string[] = [];
  if (profile.scramCredentials) {
    if (opts.channelBinding) out.push("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS");
    out.push("SCRAM-SHA-256", "SCRAM-SHA-1");
  }
  if (profile.testPassword && (opts.secure || opts.allowUnencryptedPlain)) out.push("PLAIN");
  return opts.disabled?.size ? out.filter((m) => !opts.disabled!.has(m)) : out;
}

/** A fresh mechanism by name, or undefined when it is unknown. */
export function createMechanism(
  name: string,
  profile: SaslProfile,
  opts: { channelBinding?: ChannelBinding; fakeSaltKey?: Uint8Array },
): SaslMechanism | undefined {
  switch (name) {
    case "PLAIN":
      return new PlainMechanism(profile);
    case "SCRAM-SHA-1":
      return new ScramMechanism("SHA-1", false, profile, opts);
    case "SCRAM-SHA-256":
      return new ScramMechanism("SHA-256", false, profile, opts);
    case "SCRAM-SHA-1-PLUS":
      return opts.channelBinding ? new ScramMechanism("SHA-1", true, profile, opts) : undefined;
    case "SCRAM-SHA-256-PLUS":
      return opts.channelBinding ? new ScramMechanism("SHA-256", true, profile, opts) : undefined;
    case HT_SHA_256_NONE:
      return profile.fastTokens ? new HtMechanism(profile) : undefined;
  }
  return undefined;
}
