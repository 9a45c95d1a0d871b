/**
 * GET and HEAD of an uploaded file: streamed from disk, with its type,
 * size, a Content-Disposition (inline for images, audio, video and plain
 * text, else attachment), caching validators, single byte ranges (206,
 * 416), and headers that keep a browser from running what it serves
 * (`Content-Security-Policy: default-src 'none'`, `nosniff`), as Prosody's.
 * @module
 */
import type { RequestInfo } from "../../core/http/server.ts";
import { filePath, getSlot, type Share, text, typeMatches } from "./slot.ts";
import { parsePath } from "./upload.ts";

export async function handleDownload(
  share: Share,
  request: Request,
  info: RequestInfo,
): Promise<Response> {
  const where = parsePath(info.path);
  if (!where) return text(404, "Not Found");
  const slot = await getSlot(share.store, where.id);
  if (!slot || slot.uploaded === undefined || slot.filename !== where.filename) {
    return text(404, "Not Found");
  }
  const path = filePath(share.dir, where.id);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return text(404, "Not Found");
    throw e;
  }
  let keep = false;
  try {
    const size = (await file.stat()).size;
    const etag = `"${where.id}"`;
    const remaining = Math.max(0, Math.floor(slot.when + share.expiresAfter - Date.now() / 1000));
    const headers: Record<string, string> = {
      "content-type": slot.type,
      "content-disposition": `${
        typeMatches(slot.type, share.safeTypes) ? "inline" : "attachment"
      }; filename*=UTF-8''${rfc5987(slot.filename)}`,
      "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
      "x-content-type-options": "nosniff",
      "accept-ranges": "bytes",
      "etag": etag,
      "last-modified": new Date(slot.uploaded * 1000).toUTCString(),
      "cache-control": Number.isFinite(remaining)
        ? `public, max-age=${remaining}, immutable`
        : "public, immutable",
    };
    if (request.headers.get("if-none-match")?.split(",").some((t) => t.trim() === etag)) {
      return new Response(null, { status: 304, headers: { etag } });
    }
    const range = parseRange(request.headers.get("range"), size);
    if (range === "unsatisfiable") {
      return text(416, "Range Not Satisfiable", { "content-range": `bytes */${size}` });
    }
    const head = request.method === "HEAD";
    if (!range) {
      headers["content-length"] = String(size);
      if (head) return new Response(null, { headers });
      keep = true;
      return new Response(file.readable, { headers });
    }
    const [start, end] = range;
    headers["content-length"] = String(end - start + 1);
    headers["content-range"] = `bytes ${start}-${end}/${size}`;
    if (head) return new Response(null, { status: 206, headers });
    await file.seek(start, Deno.SeekMode.Start);
    keep = true;
    return new Response(slice(file, end - start + 1), { status: 206, headers });
  } finally {
    if (!keep) file.close();
  }
}

/**
 * A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range as [first, last];
 * undefined to serve the whole file (no header, one it does not
 * understand, or several ranges); "unsatisfiable" when it lies past the end.
 */
export function parseRange(
  header: string | null,
  size: number,
): [number, number] | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return "unsatisfiable";
    return [Math.max(0, size - n), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== "" && Number(m[2]) < start) return undefined; // invalid: ignored (RFC 9110)
  if (start >= size) return "unsatisfiable";
  return [start, end];
}

/** `length` bytes from the file's position; the file is closed at the end or on cancel. */
function slice(file: Deno.FsFile, length: number): ReadableStream<Uint8Array> {
  let left = length;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buf = new Uint8Array(Math.min(left, 64 * 1024));
      const n = await file.read(buf);
      if (n === null || n === 0) {
        file.close();
        controller.error(new Error("file shorter than its range"));
        return;
      }
      left -= n;
      controller.enqueue(buf.subarray(0, n));
      if (left === 0) {
        file.close();
        controller.close();
      }
    },
    cancel() {
      file.close();
    },
  });
}

/** RFC 5987 / 8187 encoding of a filename (`filename*=UTF-8''…`). */
function rfc5987(s: string): string {
  return encodeURIComponent(s).replace(
    /['()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}
