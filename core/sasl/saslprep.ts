// deno-lint-ignore-file no-control-regex
/**
 * SASLprep (RFC 4013), as practical: non-ASCII spaces become U+0020,
 * "commonly mapped to nothing" characters are removed, the result is
 * NFKC-normalised, and prohibited output (controls, private use,
 * non-characters, surrogates, tagging and directional-formatting characters)
 * is refused. The bidirectional-text check of RFC 3454 §6 is left out.
 *
 * @example
 * ```ts
 * saslprep("I\u00ADX");   // "IX"
 * saslprep("a\u0007b");   // undefined (control character)
 * ```
 * @module
 */

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g;
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200c\u200d\u2060\ufe00-\ufe0f\ufeff]/g;
const PROHIBITED =
  /[\u0000-\u001f\u007f-\u009f\u0340\u0341\u06dd\u070f\u180e\u200e\u200f\u2028-\u202e\u2061-\u2063\u206a-\u206f\u2ff0-\u2ffb\ud800-\udfff\ue000-\uf8ff\ufdd0-\ufdef\ufff9-\ufffd\ufffe\uffff]|[\u{e0001}\u{e0020}-\u{e007f}\u{f0000}-\u{10ffff}]|[\u{1fffe}\u{1ffff}\u{2fffe}\u{2ffff}]/u;

/** The prepared string, or undefined when it holds a prohibited character. */
export function saslprep(s: string): string | undefined {
  if (PRINTABLE_ASCII.test(s)) return s;
  const out = s.replace(NON_ASCII_SPACE, " ").replace(MAPPED_TO_NOTHING, "").normalize("NFKC");
  return PROHIBITED.test(out) ? undefined : out;
}
