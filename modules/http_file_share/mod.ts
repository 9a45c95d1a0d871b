/**
 * HTTP File Upload (XEP-0363), as Prosody's mod_http_file_share: a
 * component (`components: { "upload.example.com": { module:
 * "http_file_share" } }`) that hands the server's users upload slots — a
 * PUT URL with a bearer token (an HMAC over the slot id, filename, size,
 * type, expiry and uploader) and a GET URL — and serves the files over the
 * server's HTTP listeners (module `http`) at `/file_share/<slot>/<filename>`.
 * Files are streamed to and from `<data dir>/http_file_share/<slot id>`
 * (slot ids are random, never derived from a filename); each slot is a
 * record in the archive store `http_file_share` (filename, size, type,
 * uploader, time). Files older than `http_file_share_expires_after` are
 * deleted by a background sweep.
 *
 * The parts: `slot.ts` (records, tokens, checks), `upload.ts` (PUT),
 * `download.ts` (GET/HEAD with ranges).
 *
 * Options, as Prosody names them: `http_file_share_size_limit` (10 MiB),
 * `http_file_share_daily_quota` (10 × the size limit, per user),
 * `http_file_share_global_quota` (unlimited), `http_file_share_expires_after`
 * (1 week; "never" keeps files), `http_file_share_allowed_file_types` (all;
 * e.g. `["image/*", "text/plain"]`), `http_file_share_safe_file_types`
 * (image/*, video/*, audio/*, text/plain: served inline),
 * `http_file_share_access` (JIDs or domains allowed besides the users of
 * this server's hosts), `http_file_share_secret` (random per process),
 * `http_file_share_base_url` (else `http_external_url`, else
 * `http://<this host>:<first of http_ports>`), `http_file_share_path`
 * (`http_file_share` in the data directory); and Cadence's
 * `http_file_share_cleanup_interval` (1 hour) and
 * `http_file_share_slot_lifetime` (how long a PUT URL works: 300 s).
 * @module
 */
import { randomBytes } from "node:crypto";
import type { Module } from "../../core/moduleapi.ts";
import type { StanzaEvent } from "../../core/router.ts";
import type { HttpHandler } from "../../core/http/server.ts";
import { bare } from "../../core/jid.ts";
import type { Stanza } from "../../core/xml/stanza.ts";
import { formatDateTime } from "../../core/datetime.ts";
import type { HttpProvider } from "../http.ts";
import {
  badFilename,
  filePath,
  fromItem,
  type Share,
  signToken,
  type SlotRecord,
  toStanza,
  typeMatches,
  UPLOAD_NS,
} from "./slot.ts";
import { handleUpload } from "./upload.ts";
import { handleDownload } from "./download.ts";

const DISCO_INFO = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
const DAY = 86400;
/** Items handled per storage call by the sweep and the start-up count. */
const BATCH = 500;

export default async function httpFileShare(module: Module) {
  const sizeLimit = module.getOptionInteger("http_file_share_size_limit", 10 << 20, { min: 1 });
  const dailyQuota = module.getOptionInteger("http_file_share_daily_quota", sizeLimit * 10, {
    min: 0,
  });
  const globalQuota = module.getOptionNumber("http_file_share_global_quota", Infinity, {
    min: 0,
  });
  const expiresAfter = module.getOptionPeriod("http_file_share_expires_after", "1 week");
  const cleanupInterval = module.getOptionPeriod("http_file_share_cleanup_interval", 3600);
  const slotLifetime = module.getOptionPeriod("http_file_share_slot_lifetime", 300);
  const allowedTypes = module.getOption("http_file_share_allowed_file_types") === undefined
    ? undefined
    : module.getOptionArray("http_file_share_allowed_file_types");
  const safeTypes = module.getOptionArray("http_file_share_safe_file_types", [
    "image/*",
    "video/*",
    "audio/*",
    "text/plain",
  ]);
  const access = module.getOptionSet("http_file_share_access");
  const dir = module.getOptionPath("http_file_share_path", "http_file_share")!;
  await Deno.mkdir(dir, { recursive: true, mode: 0o750 });

  const http = await module.depends<{ pathOf(name: string): string | undefined }>("http");
  const share: Share = {
    log: module.log,
    dir,
    store: module.openStore("http_file_share", "archive"),
    secret: module.getOptionString("http_file_share_secret") ??
      randomBytes(32).toString("base64url"),
    uploading: new Set(),
    expiresAfter,
    safeTypes,
  };

  // Bytes held (or promised to slots not yet used), for the global quota.
  let total = 0;
  let after: string | undefined;
  for (;;) {
    const page = await share.store.find(null, { after, limit: BATCH });
    for (const item of page) total += Number(item.stanza.attrs.size) || 0;
    if (page.length < BATCH) break;
    after = page[page.length - 1].id;
  }

  const upload: HttpHandler = (request, info) => handleUpload(share, request, info);
  const download: HttpHandler = (request, info) => handleDownload(share, request, info);
  const provider: HttpProvider = {
    name: "file_share",
    default_path: "/file_share",
    max_content_size: sizeLimit,
    cors: {
      enabled: true,
      methods: ["GET", "HEAD", "PUT", "OPTIONS"],
      headers: ["Content-Type", "Authorization", "Range"],
    },
    route: { "PUT /*": upload, "GET /*": download, "HEAD /*": download },
  };
  module.provides("http", provider);

  /** Where URLs start: the configured base, else the first HTTP port on this host's name. */
  function baseUrl(): string {
    const base = module.getOptionString("http_file_share_base_url") ??
      module.getOptionString("http_external_url");
    const path = http.pathOf("file_share") ?? "/file_share";
    if (base !== undefined) {
      const b = base.replace(/\/+$/, "");
      // A base_url names the service itself; http_external_url the server.
      return module.getOptionString("http_file_share_base_url") !== undefined ? b : b + path;
    }
    const port = module.getOptionArray<number>("http_ports", [5280])[0] ?? 5280;
    return `http://${module.host}:${port}${path}`;
  }

  /** Whether this JID may ask for slots: users of this server's hosts, and `http_file_share_access`. */
  function mayUpload(jid: string): boolean {
    const domain = jid.slice(jid.indexOf("@") + 1);
    if (!jid.includes("@")) return access.has(jid);
    return module.hostType(domain) === "local" || access.has(jid) || access.has(domain);
  }

  /** The error for a request that breaks a rule, or the slot. */
  async function requestSlot(stanza: Stanza, request: Stanza): Promise<Stanza> {
    const from = stanza.attrs.from ?? "";
    const uploader = bare(from);
    if (!mayUpload(uploader)) {
      return stanza.errorReply("auth", "forbidden", "You may not upload files here");
    }
    const filename = request.attrs.filename;
    const why = badFilename(filename);
    if (why) return stanza.errorReply("modify", "bad-request", why);
    const sizeText = request.attrs.size ?? "";
    if (!/^\d+$/.test(sizeText)) {
      return stanza.errorReply("modify", "bad-request", "A valid size is required");
    }
    const size = Number(sizeText);
    if (size > sizeLimit) {
      const e = stanza.errorReply("modify", "not-acceptable", "File too large");
      e.tag("file-too-large", { xmlns: UPLOAD_NS }).textTag("max-file-size", String(sizeLimit));
      return e;
    }
    const type = request.attrs["content-type"] || "application/octet-stream";
    if (allowedTypes !== undefined && !typeMatches(type, allowedTypes)) {
      return stanza.errorReply("modify", "not-acceptable", "File type not allowed");
    }
    const now = Date.now() / 1000;
    const recent = await share.store.find(null, { with: uploader, start: now - DAY });
    let used = 0;
    for (const item of recent) used += Number(item.stanza.attrs.size) || 0;
    if (used + size > dailyQuota) {
      // When enough of today's uploads leave the window.
      let freed = 0;
      let retry = now + DAY;
      for (const item of recent) {
        freed += Number(item.stanza.attrs.size) || 0;
        if (used - freed + size <= dailyQuota) {
          retry = item.when + DAY;
          break;
        }
      }
      const e = stanza.errorReply("wait", "resource-constraint", "Daily quota reached");
      e.tag("retry", { xmlns: UPLOAD_NS, stamp: formatDateTime(Math.ceil(retry)) });
      return e;
    }
    if (total + size > globalQuota) {
      return stanza.errorReply("wait", "resource-constraint", "Global quota reached");
    }

    const slot: SlotRecord = {
      id: crypto.randomUUID(),
      filename: filename!,
      size,
      type,
      uploader,
      when: now,
    };
    await share.store.append(null, slot.id, toStanza(slot), now, uploader);
    total += size;
    const token = signToken(share.secret, {
      s: slot.id,
      f: slot.filename,
      z: size,
      t: type,
      e: Math.floor(now + slotLifetime),
      u: uploader,
    });
    const url = `${baseUrl()}/${slot.id}/${encodeURIComponent(slot.filename)}`;
    module.log.info("slot {id} for {user}: {filename} ({size} bytes)", {
      id: slot.id,
      user: uploader,
      filename: slot.filename,
      size,
    });
    return stanza.reply()
      .tag("slot", { xmlns: UPLOAD_NS })
      .tag("put", { url })
      .textTag("header", `Bearer ${token}`, { name: "Authorization" }).up()
      .tag("get", { url }).up();
  }

  function discoInfo(stanza: Stanza): Stanza {
    const q = stanza.reply().tag("query", { xmlns: DISCO_INFO });
    q.tag("identity", { category: "store", type: "file", name: "HTTP File Upload" }).up();
    for (const f of [DISCO_INFO, DISCO_ITEMS, UPLOAD_NS]) q.tag("feature", { var: f }).up();
    q.tag("x", { xmlns: "jabber:x:data", type: "result" })
      .tag("field", { var: "FORM_TYPE", type: "hidden" }).textTag("value", UPLOAD_NS).up()
      .tag("field", { var: "max-file-size" }).textTag("value", String(sizeLimit)).up();
    return q;
  }

  /** The answer to an iq get/set to the service. */
  function answer(stanza: Stanza): Stanza | Promise<Stanza> {
    const child = stanza.firstChild();
    const ns = child?.attrs.xmlns;
    if (stanza.attrs.type === "get" && child !== undefined) {
      if (child.name === "request" && ns === UPLOAD_NS) return requestSlot(stanza, child);
      if (child.name === "query" && child.attrs.node === undefined) {
        if (ns === DISCO_INFO) return discoInfo(stanza);
        if (ns === DISCO_ITEMS) return stanza.reply().tag("query", { xmlns: ns });
      }
    }
    return stanza.errorReply("cancel", "service-unavailable");
  }

  module.hook("iq/host", ({ origin, stanza }: StanzaEvent) => {
    const type = stanza.attrs.type;
    if (type !== "get" && type !== "set") return true;
    const reply = answer(stanza);
    if (!(reply instanceof Promise)) return origin.send(reply), true;
    return reply.then((r) => origin.send(r), (error) => {
      module.log.error("slot request failed: {error}", { error });
      origin.send(stanza.errorReply("wait", "internal-server-error"));
    }).then(() => true);
  });

  /** Deletes the files (and records) of slots older than `expiresAfter`. */
  async function sweep(): Promise<void> {
    if (!Number.isFinite(expiresAfter)) return;
    const before = Date.now() / 1000 - expiresAfter;
    let removed = 0;
    for (;;) {
      const page = await share.store.find(null, { end: before, limit: BATCH });
      for (const item of page) {
        const slot = fromItem(item);
        if (share.uploading.has(slot.id)) continue;
        for (const suffix of ["", ".part"]) {
          await Deno.remove(filePath(dir, slot.id, suffix)).catch((e) => {
            if (!(e instanceof Deno.errors.NotFound)) throw e;
          });
        }
        await share.store.delete(null, { key: slot.id });
        total -= slot.size;
        removed++;
      }
      if (page.length < BATCH) break;
    }
    if (removed) module.log.info("expired {n} uploads", { n: removed });
  }
  module.addTimer(Math.min(cleanupInterval, 60), async () => {
    await sweep();
    return cleanupInterval;
  });
  module.exports.sweep = sweep;
}
