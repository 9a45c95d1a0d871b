/**
 * The PUT of an upload slot: the bearer token checked, the body streamed to
 * a temporary file beside the final one (never held in memory), counted
 * against the size the slot promised, then renamed into place. A slot takes
 * one upload: a second PUT gets 409.
 * @module
 */
import type { RequestInfo } from "../../core/http/server.ts";
import {
  filePath,
  getSlot,
  isSlotId,
  mediaType,
  type Share,
  text,
  toStanza,
  verifyToken,
} from "./slot.ts";

/** `/<slot id>/<filename>` → its parts (the filename decoded), or undefined. */
export function parsePath(path: string): { id: string; filename: string } | undefined {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
  if (!m || !isSlotId(m[1])) return undefined;
  try {
    return { id: m[1], filename: decodeURIComponent(m[2]) };
  } catch {
    return undefined;
  }
}

export async function handleUpload(
  share: Share,
  request: Request,
  info: RequestInfo,
): Promise<Response> {
  const auth = request.headers.get("authorization");
  if (!auth || !/^bearer /i.test(auth)) {
    return text(401, "Unauthorized", { "www-authenticate": "Bearer" });
  }
  const where = parsePath(info.path);
  if (!where) return text(404, "Not Found");
  const claims = verifyToken(share.secret, auth.slice(7).trim());
  if (!claims || claims.s !== where.id || claims.f !== where.filename) {
    return text(403, "Invalid token");
  }
  if (claims.e < Date.now() / 1000) return text(403, "Token expired");

  const lengthHeader = request.headers.get("content-length");
  if (lengthHeader === null || !/^\d+$/.test(lengthHeader)) {
    return text(400, "Content-Length required");
  }
  const length = Number(lengthHeader);
  if (length > claims.z) return text(413, "Payload Too Large");
  if (length !== claims.z) return text(400, "Content-Length does not match the slot's size");
  const type = request.headers.get("content-type");
  if (type !== null && mediaType(type) !== mediaType(claims.t)) {
    return text(400, "Content-Type does not match the slot's");
  }

  const id = where.id;
  if (share.uploading.has(id)) return text(409, "Upload in progress");
  share.uploading.add(id);
  try {
    const slot = await getSlot(share.store, id);
    if (!slot) return text(404, "Slot expired");
    const final = filePath(share.dir, id);
    if (slot.uploaded !== undefined || await exists(final)) {
      return text(409, "Conflict: this slot was used already");
    }
    const part = filePath(share.dir, id, ".part");
    const failure = await receive(request, part, claims.z);
    if (failure) {
      await Deno.remove(part).catch(() => {});
      share.log.info("upload of {id} by {user} failed: {why}", {
        id,
        user: slot.uploader,
        why: failure.body,
      });
      return text(failure.status, failure.body);
    }
    await Deno.rename(part, final);
    slot.uploaded = Date.now() / 1000;
    await share.store.set(null, id, toStanza(slot));
    share.log.info("{user} uploaded {id} ({size} bytes)", {
      user: slot.uploader,
      id,
      size: slot.size,
    });
    return text(201, "Created");
  } finally {
    share.uploading.delete(id);
  }
}

/** Writes exactly `size` bytes of the body to `path`; a failure says why. */
async function receive(
  request: Request,
  path: string,
  size: number,
): Promise<{ status: number; body: string } | undefined> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o640 });
  let received = 0;
  try {
    if (request.body) {
      const reader = request.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          received += value.byteLength;
          if (received > size) {
            await reader.cancel().catch(() => {});
            return { status: 413, body: "More data than the slot's size" };
          }
          for (let off = 0; off < value.byteLength;) {
            off += await file.write(value.subarray(off));
          }
        }
      } catch {
        return { status: 400, body: "The upload was cut short" };
      } finally {
        reader.releaseLock();
      }
    }
    if (received !== size) return { status: 400, body: "Less data than the slot's size" };
    await file.sync();
    return undefined;
  } finally {
    file.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
