/**
 * How loudly to log a stream error a remote server closed an s2s stream
 * with, as Prosody's mod_s2s does, so that operators see what needs their
 * attention and not the noise: errors that say our output was broken at
 * `error`; those that may point at our configuration or behaviour
 * (policies, addressing, authentication, certificates) at `warn`; the
 * remote server going away or redirecting at `info`; routine timeouts at
 * `debug`. Every condition of RFC 6120 §4.9.3 has its level.
 *
 * @example
 * ```ts
 * log[streamErrorLevel("system-shutdown")]("…"); // info
 * ```
 * @module
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Record<string, LogLevel> = {
  // What we sent was not XML, or not XMPP's: our bug.
  "bad-format": "error",
  "bad-namespace-prefix": "error",
  "invalid-namespace": "error",
  "invalid-xml": "error",
  "not-well-formed": "error",
  "restricted-xml": "error",
  "unsupported-encoding": "error",
  // It may be us: what we sent, from where, or how we authenticated.
  "improper-addressing": "warn",
  "internal-server-error": "warn",
  "invalid-from": "warn",
  "not-authorized": "warn",
  "policy-violation": "warn",
  "unsupported-feature": "warn",
  "unsupported-stanza-type": "warn",
  "unsupported-version": "warn",
  // The remote side changed, or does not serve what we asked for.
  "conflict": "info",
  "host-gone": "info",
  "host-unknown": "info",
  "remote-connection-failed": "info",
  "reset": "info",
  "resource-constraint": "info",
  "see-other-host": "info",
  "system-shutdown": "info",
  "undefined-condition": "info",
  // Routine.
  "connection-timeout": "debug",
};

/** The log level for a remote stream error (with its text, which may complain of our certificate). */
export function streamErrorLevel(condition: string, text = ""): LogLevel {
  const level = LEVELS[condition] ?? "info";
  // A complaint about our certificate is ours to fix, whatever the condition.
  if (level === "info" && /certificate|x\.?509|\btls\b|ssl/i.test(text)) return "warn";
  return level;
}

/** The RFC 6120 §4.9.3 conditions (for tests and documentation). */
export const STREAM_ERROR_CONDITIONS = Object.keys(LEVELS);
