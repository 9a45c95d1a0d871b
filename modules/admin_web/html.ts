/**
 * HTML for the web admin: an `html` tagged template whose interpolations are
 * escaped unless they are {@link Html} already, and the page frame with the
 * headers every answer carries (CSP, no framing, no caching).
 *
 * @example
 * ```ts
 * const name = "<script>";
 * html`<p>${name}</p>`.text; // "<p>&lt;script&gt;</p>"
 * ```
 * @module
 */

/** Markup that is safe as it is (made by `html` or `raw`). */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** What may go into `html`: text (escaped), markup, numbers, lists of them; nothing for null. */
export type Part = Html | string | number | boolean | null | undefined | Part[];

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text made safe for element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function render(part: Part): string {
  if (part === null || part === undefined || part === false) return "";
  if (part instanceof Html) return part.text;
  if (Array.isArray(part)) return part.map(render).join("");
  return escapeHtml(String(part));
}

/** The tagged template: literal parts kept, interpolations escaped. */
export function html(strings: TemplateStringsArray, ...parts: Part[]): Html {
  let out = strings[0];
  for (let i = 0; i < parts.length; i++) out += render(parts[i]) + strings[i + 1];
  return new Html(out);
}

/** Markup trusted as it is (only for text this module made, e.g. SVG paths of numbers). */
export function raw(text: string): Html {
  return new Html(text);
}

/** Headers of every admin answer. */
export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
};

/** An HTML answer with the security headers (and any others given). */
export function page(body: Html, status = 200, headers: Record<string, string> = {}): Response {
  return new Response("<!DOCTYPE html>\n" + body.text, {
    status,
    headers: { ...SECURITY_HEADERS, "content-type": "text/html; charset=utf-8", ...headers },
  });
}

/** A 303 to `location` (after a POST), with the security headers. */
export function redirect(location: string, headers: Record<string, string> = {}): Response {
  return new Response(null, {
    status: 303,
    headers: { ...SECURITY_HEADERS, location, ...headers },
  });
}

/** A plain-text refusal (403, 429, …) with the security headers. */
export function refusal(status: number, text: string): Response {
  return new Response(text + "\n", {
    status,
    headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8" },
  });
}
