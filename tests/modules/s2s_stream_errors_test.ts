/**
 * The log level for each stream error a remote server may close an s2s
 * stream with (RFC 6120 §4.9.3), as Prosody's mod_s2s sorts them.
 */
import assert from "node:assert/strict";
import { STREAM_ERROR_CONDITIONS, streamErrorLevel } from "../../modules/s2s/stream_errors.ts";

/** RFC 6120 §4.9.3, every condition, written out here independently of the module. */
const RFC_6120 = [
  "bad-format",
  "bad-namespace-prefix",
  "conflict",
  "connection-timeout",
  "host-gone",
  "host-unknown",
  "improper-addressing",
  "internal-server-error",
  "invalid-from",
  "invalid-namespace",
  "invalid-xml",
  "not-authorized",
  "not-well-formed",
  "policy-violation",
  "remote-connection-failed",
  "reset",
  "resource-constraint",
  "restricted-xml",
  "see-other-host",
  "system-shutdown",
  "undefined-condition",
  "unsupported-encoding",
  "unsupported-feature",
  "unsupported-stanza-type",
  "unsupported-version",
];

Deno.test("s2s stream errors: every RFC 6120 condition has its level", () => {
  assert.deepEqual([...STREAM_ERROR_CONDITIONS].sort(), [...RFC_6120].sort());
  const expected: Record<string, string> = {
    // Our output was broken: error.
    "bad-format": "error",
    "bad-namespace-prefix": "error",
    "invalid-namespace": "error",
    "invalid-xml": "error",
    "not-well-formed": "error",
    "restricted-xml": "error",
    "unsupported-encoding": "error",
    // Maybe us: warn.
    "improper-addressing": "warn",
    "internal-server-error": "warn",
    "invalid-from": "warn",
    "not-authorized": "warn",
    "policy-violation": "warn",
    "unsupported-feature": "warn",
    "unsupported-stanza-type": "warn",
    "unsupported-version": "warn",
    // Changes on the remote side: info.
    "conflict": "info",
    "host-gone": "info",
    "host-unknown": "info",
    "remote-connection-failed": "info",
    "reset": "info",
    "resource-constraint": "info",
    "see-other-host": "info",
    "system-shutdown": "info",
    "undefined-condition": "info",
    // Routine: debug.
    "connection-timeout": "debug",
  };
  for (const condition of RFC_6120) {
    assert.equal(streamErrorLevel(condition), expected[condition], condition);
  }
});

Deno.test("s2s stream errors: a certificate complaint is ours to look at; unknown conditions are info", () => {
  assert.equal(streamErrorLevel("remote-connection-failed", "Certificate has expired"), "warn");
  assert.equal(streamErrorLevel("host-unknown", "TLS: certificate not valid for c.test"), "warn");
  assert.equal(streamErrorLevel("host-unknown", "No such host"), "info");
  assert.equal(streamErrorLevel("not-well-formed", "certificate"), "error"); // already louder
  assert.equal(streamErrorLevel("x-made-up"), "info");
});
