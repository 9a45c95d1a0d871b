/**
 * Upload slots of http_file_share: the record kept per slot, the bearer
 * token that authorises its one PUT (an HMAC over the slot's facts, in the
 * spirit of Prosody's JWT), and the checks on what a client asks for.
 * @module
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import { join, resolve, sep } from "node:path";
import type { Logger } from "../../core/log.ts";
import type { ArchiveStore } from "../../core/storage/types.ts";
import { element, type Stanza } from "../../core/xml/stanza.ts";

export const UPLOAD_NS = "urn:xmpp:http:upload:0";

/** What the HTTP handlers share with the module. */
export interface Share {
  log: Logger;
  /** Where files live (absolute). */
  dir: string;
  /** One item per slot: key = slot id, with = uploader, when = issued. */
  store: ArchiveStore;
  secret: string;
  /** Slots whose PUT is in progress. */
  uploading: Set<string>;
  /** Seconds a file is kept (for Cache-Control). */
  expiresAfter: number;
  /** Content types served inline (others as attachments). */
  safeTypes: string[];
}

/** A slot as stored. */
export interface SlotRecord {
  id: string;
  filename: string;
  size: number;
  type: string;
  uploader: string;
  /** When the slot was issued (seconds since the epoch). */
  when: number;
  /** When the upload completed, if it has. */
  uploaded?: number;
}

/** The token's claims. */
export interface Claims {
  /** Slot id, filename, size, content type, expiry (s), uploader. */
  s: string;
  f: string;
  z: number;
  t: string;
  e: number;
  u: string;
}

const SLOT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The most bytes a filename may take (what common filesystems allow). */
const MAX_FILENAME_BYTES = 255;

export function isSlotId(id: string): boolean {
  return SLOT_ID.test(id);
}

/** Why a filename is refused, or undefined when it is fine. */
export function badFilename(name: string | undefined): string | undefined {
  if (name === undefined || name === "") return "a filename is required";
  if (/[/\\\0]/.test(name)) return "the filename may not contain / or \\ or NUL";
  if (name === "." || name === "..") return "invalid filename";
  if (new TextEncoder().encode(name).length > MAX_FILENAME_BYTES) return "the filename is too long";
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return "the filename may not contain control characters";
  return undefined;
}

/** "image/png; charset=x" → "image/png". */
export function mediaType(type: string): string {
  return type.split(";")[0].trim().toLowerCase();
}

/** Whether a type is in a list like ["image/*", "text/plain"]. */
export function typeMatches(type: string, patterns: string[]): boolean {
  const t = mediaType(type);
  return patterns.some((p) => {
    const q = p.trim().toLowerCase();
    return q === t || q === "*" || q === "*/*" ||
      (q.endsWith("/*") && t.startsWith(q.slice(0, -1)));
  });
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64url");

export function signToken(secret: string, claims: Claims): string {
  const body = b64(JSON.stringify(claims));
  return body + "." + createHmac("sha256", secret).update(body).digest("base64url");
}

/** The claims of a token signed with `secret`, or undefined when it is forged or malformed. */
export function verifyToken(secret: string, token: string): Claims | undefined {
  const dot = token.indexOf(".");
  if (dot === -1) return undefined;
  const body = token.slice(0, dot);
  const mac = Buffer.from(token.slice(dot + 1), "base64url");
  const want = createHmac("sha256", secret).update(body).digest();
  if (mac.length !== want.length || !timingSafeEqual(mac, want)) return undefined;
  try {
    const c = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
    return typeof c === "object" && c !== null ? c as Claims : undefined;
  } catch {
    return undefined;
  }
}

/** The file of a slot; throws if it would fall outside the directory. */
export function filePath(dir: string, id: string, suffix = ""): string {
  if (!isSlotId(id)) throw new Error(`not a slot id: ${id}`);
  const path = resolve(join(dir, id + suffix));
  if (!path.startsWith(resolve(dir) + sep)) throw new Error(`slot path escapes: ${path}`);
  return path;
}

/** The stored form of a slot. */
export function toStanza(r: SlotRecord): Stanza {
  const attrs: Record<string, string> = {
    xmlns: UPLOAD_NS,
    filename: r.filename,
    size: String(r.size),
    "content-type": r.type,
  };
  if (r.uploaded !== undefined) attrs.uploaded = String(r.uploaded);
  return element("request", attrs);
}

export function fromItem(item: { id: string; stanza: Stanza; when: number; with: string }) {
  const a = item.stanza.attrs;
  const r: SlotRecord = {
    id: item.id,
    filename: a.filename ?? "",
    size: Number(a.size),
    type: a["content-type"] ?? "application/octet-stream",
    uploader: item.with,
    when: item.when,
  };
  if (a.uploaded !== undefined) r.uploaded = Number(a.uploaded);
  return r;
}

/** A slot's record, or null. */
export async function getSlot(store: ArchiveStore, id: string): Promise<SlotRecord | null> {
  const item = await store.get(null, id);
  return item ? fromItem(item) : null;
}

/** Plain-text HTTP answer. */
export function text(status: number, body: string, headers: Record<string, string> = {}) {
  return new Response(body + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}
