/**
 * Outgoing server-to-server routes: one stream per (local domain, remote
 * domain), set up when a stanza needs it and reused by every session.
 *
 * The remote server is found by its SRV records (`core/net/srv.ts`:
 * `_xmpps-server` for direct TLS, `_xmpp-server`, else the domain's
 * addresses on 5269), each target tried in order. The stream is encrypted
 * (STARTTLS when offered — required with `s2s_require_encryption` — or TLS
 * from the first byte, XEP-0368), presenting our host's certificate. The
 * peer's certificate must be valid for its domain when the policy says so
 * (`s2s_secure_auth`, `s2s_secure_domains`). We authenticate with SASL
 * EXTERNAL (XEP-0178) when the peer offers it (it accepts our
 * certificate), else with dialback (XEP-0220). Stanzas wait meanwhile (at
 * most 100 per route); when it fails, their senders get
 * `remote-server-not-found` or `remote-server-timeout`, and the pair is not
 * tried again for a minute. A route idle for `s2s_timeout` closes.
 *
 * @example
 * ```ts
 * const routes = outgoingRoutes(ctx, { nameServer, idleSec: 300 });
 * routes.send("localhost", "example.com", stanza);
 * ```
 * @module
 */
import { connect, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { Connection } from "../../core/net/connection.ts";
import { resolveServer, type Target } from "../../core/net/srv.ts";
import { StreamParser } from "../../core/xml/parser.ts";
import { type ErrorType, escapeAttr, escapeText, type Stanza } from "../../core/xml/stanza.ts";
import { unrefTimeout } from "../../core/timers.ts";
import { bare } from "../../core/jid.ts";
import { DIALBACK_NS, dialbackKey } from "./dialback.ts";
import {
  ALPN,
  MAX_STANZA,
  NS,
  type S2sContext,
  SASL_NS,
  streamHeader,
  STREAMS,
  STREAMS_NS,
  TLS_NS,
} from "./context.ts";

/**
 * What one route keeps while it is being set up (a login's presence to a big
 * server's contacts is hundreds of stanzas), and what all routes keep at once.
 */
const MAX_QUEUE = 1000;
const MAX_QUEUE_BYTES = 1 << 20;
const MAX_QUEUED_BYTES = 32 << 20;
/** Routes (outgoing streams) at once. */
const MAX_ROUTES = 1000;
/** How long a failed remote server is not tried again (stanzas for it bounce at once). */
const RETRY_AFTER_MS = 60_000;
/**
 * Routes being set up only to check another server's dialback key, and the
 * checks waiting at once (what unauthenticated streams can make us do); and
 * the routes being set up for one local user's stanzas (a login's presence
 * to contacts on many servers included). The rest of the 1,000 stays for
 * everyone else.
 */
const MAX_VERIFY_ROUTES = 100;
const MAX_PENDING_VERIFIES = 256;
const MAX_SETUPS_PER_SENDER = 100;

/** An outgoing stream to one remote domain, for one local domain. */
interface Route {
  local: string;
  remote: string;
  state: "connecting" | "open" | "ready" | "closed";
  /** Whether setting it up has begun. */
  started: boolean;
  conn?: Connection;
  /** The remote server's id for this stream (what our dialback key is made with). */
  streamId?: string;
  queue: Stanza[];
  /** Their size as text (the text itself is made again when they are sent). */
  queueBytes: number;
  /** Dialback verifications waiting to be sent once the stream is open, and their answers. */
  verifies: Map<string, { key: string; resolve: (valid: boolean) => void }>;
  lastUsed: number;
  /** Opened to check a dialback key, with no stanza of ours waiting. */
  verifyOnly: boolean;
  /** The local user whose stanza opened it (while it is set up). */
  starter?: string;
  /** Ends the setup if it takes longer than s2s_connect_timeout (DNS and connecting included). */
  setupTimer?: number;
  /** How we authenticated, once we did; what we made of the peer's certificate. */
  auth?: "SASL EXTERNAL" | "dialback";
  certificate?: string;
}

/** What `routes()` tells of an outgoing route. */
export interface RouteInfo {
  local: string;
  remote: string;
  state: Route["state"];
  secure: boolean;
  auth?: Route["auth"];
  certificate?: string;
}

export interface OutgoingRoutes {
  /** Sends a stanza to a remote domain (queued until its route is ready); false if it cannot. */
  send(local: string, remote: string, stanza: Stanza): boolean;
  /** Asks `remote`'s server whether a dialback key it gave us is its own (XEP-0220 §2.1.2). */
  verify(local: string, remote: string, id: string, key: string): Promise<boolean>;
  /** Closes idle routes and forgets old failures (every minute). */
  sweep(): void;
  closeAll(): void;
  /** The routes now, for admins and tests. */
  list(): RouteInfo[];
}

export function outgoingRoutes(
  ctx: S2sContext,
  opts: { nameServer?: { ipAddr: string; port: number }; idleSec: number },
): OutgoingRoutes {
  const { module, log } = ctx;
  const routes = new Map<string, Route>();
  /** Domain pairs ("local|remote") whose route failed lately: not tried again before `until`. */
  const recentlyFailed = new Map<string, { until: number; why: string }>();
  /** Bytes waiting in all routes' queues. */
  let queuedBytes = 0;
  /** Stanzas a broken stream gave back, sent again once. */
  const retried = new WeakSet<Stanza>();
  let stopping = false;
  /** Key checks waiting for an answer, on all routes. */
  let pendingVerifies = 0;

  /** The route for a pair, made if there is room: `starter` is the local user it is made for. */
  function routeFor(local: string, remote: string, starter?: string): Route | undefined {
    const key = `${local}|${remote}`;
    let r = routes.get(key);
    if (!r || r.state === "closed") {
      if (routes.size >= MAX_ROUTES || stopping) return undefined;
      let settingUp = 0, verifying = 0;
      for (const o of routes.values()) {
        if (o.state === "ready" || o.state === "closed") continue;
        if (o.verifyOnly) verifying++;
        if (starter !== undefined && o.starter === starter) settingUp++;
      }
      if (
        starter === undefined ? verifying >= MAX_VERIFY_ROUTES : settingUp >= MAX_SETUPS_PER_SENDER
      ) {
        return undefined;
      }
      r = {
        local,
        remote,
        state: "connecting",
        started: false,
        queue: [],
        queueBytes: 0,
        verifies: new Map(),
        lastUsed: Date.now(),
        verifyOnly: starter === undefined,
        starter: starter || undefined,
      };
      routes.set(key, r);
    }
    return r;
  }

  /** Sets the route up, once (after what it is for has been put in it). */
  function start(r: Route) {
    if (r.started) return;
    r.started = true;
    r.setupTimer = unrefTimeout(() => {
      if (r.state !== "ready") {
        fail(r, "remote-server-timeout", `${r.remote} did not answer and authenticate in time`);
      }
    }, ctx.setupTimeoutMs);
    open(r).catch((e) => fail(r, "remote-server-not-found", String(e?.message ?? e)));
  }

  function send(local: string, remote: string, stanza: Stanza): boolean {
    // Only this server's domains send through it (never a relay for others').
    if (module.hostType(local) === undefined) return false;
    const key = `${local}|${remote}`;
    let r = routes.get(key);
    // The usual case first: a route that is up, with nothing more to decide.
    if (r?.state === "ready") {
      r.lastUsed = Date.now();
      return r.conn!.write(stanza.toString(), stanza);
    }
    // A server that just failed is not tried again for presence (each broadcast would),
    // nor for errors and results; a message or an iq tries again, and bounces if it fails.
    const failed = recentlyFailed.get(key);
    if (failed && failed.until > Date.now()) {
      const type = stanza.attrs.type;
      if (type === "error" || type === "result" || stanza.name === "presence") return true;
    }
    recentlyFailed.delete(key);
    // (a user's stanza counts against the user; the server's own, like a probe's answer, not)
    const from = stanza.attrs.from ?? "";
    r = routeFor(local, remote, from.includes("@") ? bare(from) : "");
    if (!r) return false;
    r.lastUsed = Date.now();
    const bytes = stanza.toString().length;
    if (
      r.queue.length >= MAX_QUEUE || r.queueBytes + bytes > MAX_QUEUE_BYTES ||
      queuedBytes + bytes > MAX_QUEUED_BYTES
    ) return false;
    r.queue.push(stanza);
    r.queueBytes += bytes;
    queuedBytes += bytes;
    r.verifyOnly = false;
    start(r);
    return true;
  }

  async function open(r: Route) {
    const targets = await resolveServer(r.remote, { nameServer: opts.nameServer });
    let socket: Socket | undefined, target: Target | undefined;
    for (const t of targets) {
      if (r.state === "closed") return; // (timed out, or the server is stopping)
      socket = await tryConnect(t.address, t.port).catch((e) => {
        log.debug("s2s to {remote}: {where} failed: {error}", {
          remote: r.remote,
          where: `${t.address}:${t.port}`,
          error: e,
        });
        return undefined;
      });
      if (socket) {
        target = t;
        break;
      }
    }
    if (!socket || !target) {
      return fail(r, "remote-server-not-found", `No server for ${r.remote} answered`);
    }
    if (r.state === "closed") return void socket.destroy();
    const conn = new Connection(socket, false, ctx.output);
    r.conn = conn;
    /** What the last <stream:features/> offered, and what we tried. */
    let starttlsSent = false, saslTried = false, saslDone = false, dialbackOffered = false;
    const restart = () => {
      if (r.state !== "closed") {
        conn.write(streamHeader({ from: r.local, to: r.remote, version: "1.0" }));
      }
    };
    /** TLS is up: the peer's certificate must do when the policy asks for it. */
    const tlsUp = (done: boolean) => {
      if (!done || r.state === "closed") return;
      const verdict = ctx.judgeCertificate(conn.peerCertificates(), r.remote);
      if (!verdict.ok && ctx.secureAuthFor(r.local, r.remote)) {
        log.warn("s2s to {remote} refused: its certificate is not valid ({reason})", {
          remote: r.remote,
          reason: verdict.reason,
        });
        return fail(r, "remote-server-not-found", `The certificate of ${r.remote} is not valid`);
      }
      r.certificate = verdict.ok ? "valid" : verdict.reason;
      log.debug("s2s TLS to {remote}: certificate {state}", {
        remote: r.remote,
        state: verdict.ok ? "valid" : `not valid (${verdict.reason})`,
      });
      restart();
    };
    const ready = (how: Route["auth"] & string) => {
      // (However the peer got here: a route that needs a valid certificate has one.)
      if (r.certificate !== "valid" && ctx.secureAuthFor(r.local, r.remote)) {
        return fail(r, "remote-server-not-found", `The certificate of ${r.remote} is not valid`);
      }
      clearTimeout(r.setupTimer);
      r.state = "ready";
      r.starter = undefined;
      r.auth = how;
      log.info("s2s route {local} → {remote} authenticated ({how})", {
        local: r.local,
        remote: r.remote,
        how,
      });
      const queued = takeQueue(r);
      // (a flush past the send buffer drops the stream: what was not written goes on below)
      const unwritten = queued.findIndex((s) => !conn.write(s.toString(), s));
      if (unwritten >= 0) resendOrBounce(r, queued.slice(unwritten));
    };
    const dialback = () => {
      r.state = "open";
      conn.write(
        `<db:result from='${escapeAttr(r.local)}' to='${escapeAttr(r.remote)}'>` +
          dialbackKey(ctx.secret, r.remote, r.local, r.streamId ?? "") + "</db:result>",
      );
    };
    const parser = new StreamParser({
      streamOpen(attrs) {
        r.streamId = attrs.id; // (the key is made with the id of the stream after TLS)
      },
      stanza(el) {
        if (el.name === "error" && el.attrs.xmlns === STREAMS) {
          ctx.remoteError(el, `${r.local} → ${r.remote}`);
          if (r.state === "ready") return close(r);
          // Refused while being set up: the senders learn why.
          const condition = el.tags().find((c) => c.name !== "text")?.name ?? "an error";
          const text = el.getChildText("text", STREAMS_NS);
          return fail(
            r,
            "remote-server-not-found",
            `${r.remote} closed the stream: ${condition}${text ? ` (${text})` : ""}`,
          );
        }
        if (el.name === "features" && el.attrs.xmlns === STREAMS) {
          if (saslDone) {
            ready("SASL EXTERNAL");
            for (const [id, v] of r.verifies) sendVerify(r, id, v.key);
            return;
          }
          if (!conn.secure && el.getChild("starttls", TLS_NS)) {
            conn.write(`<starttls xmlns='${TLS_NS}'/>`);
            starttlsSent = true;
            return;
          }
          // No TLS: refused when required, and when the peer must show a valid certificate.
          if (!conn.secure && ctx.requireEncryption) {
            return fail(r, "remote-server-not-found", `${r.remote} offers no TLS`);
          }
          if (!conn.secure && ctx.secureAuthFor(r.local, r.remote)) {
            log.warn("s2s to {remote} refused: no TLS, so no certificate to check", {
              remote: r.remote,
            });
            return fail(r, "remote-server-not-found", `${r.remote} offers no TLS`);
          }
          dialbackOffered = el.getChild("dialback", "urn:xmpp:features:dialback") !== undefined;
          // The peer takes our certificate: SASL EXTERNAL (XEP-0178), else dialback.
          const mechanisms = el.getChild("mechanisms", SASL_NS)?.tags() ?? [];
          if (conn.secure && mechanisms.some((m) => m.getText().trim() === "EXTERNAL")) {
            saslTried = true;
            conn.write(
              `<auth xmlns='${SASL_NS}' mechanism='EXTERNAL'>${
                Buffer.from(r.local).toString("base64")
              }</auth>`,
            );
            return;
          }
          dialback();
          for (const [id, v] of r.verifies) sendVerify(r, id, v.key);
          return;
        }
        if (el.attrs.xmlns === SASL_NS && saslTried && !saslDone && r.state === "connecting") {
          if (el.name === "success") {
            saslDone = true;
            parser.reset();
            return restart();
          }
          // Refused: dialback, if the peer offered it.
          log.info("s2s to {remote}: SASL EXTERNAL refused ({condition})", {
            remote: r.remote,
            condition: el.tags()[0]?.name ?? "?",
          });
          if (!dialbackOffered) {
            return fail(r, "remote-server-not-found", `${r.remote} refused our certificate`);
          }
          dialback();
          for (const [id, v] of r.verifies) sendVerify(r, id, v.key);
          return;
        }
        if (el.name === "proceed" && el.attrs.xmlns === TLS_NS) {
          if (!starttlsSent || conn.secure) {
            return fail(r, "remote-server-not-found", `${r.remote} sent an unasked <proceed/>`);
          }
          // Nothing more is read in the clear: what followed <proceed/> in this chunk is
          // dropped, never taken as part of the encrypted stream (CVE-2011-0411).
          parser.reset();
          withOurCertificate(r.local).then((secureContext) =>
            conn.startTlsClient(r.remote, { secureContext })
          ).then(tlsUp);
          return;
        }
        if (el.name === "failure" && el.attrs.xmlns === TLS_NS) {
          return fail(r, "remote-server-not-found", `${r.remote} failed TLS`);
        }
        if (el.attrs.xmlns === DIALBACK_NS && r.state !== "open" && r.state !== "ready") {
          // Before our key was sent (before TLS, when it is required): not an answer.
          return fail(r, "remote-server-not-found", `${r.remote} answered dialback too early`);
        }
        if (el.attrs.xmlns === DIALBACK_NS && el.name === "result") {
          if (el.attrs.from !== r.remote || el.attrs.to !== r.local) {
            return fail(r, "remote-server-not-found", `${r.remote} answered for other domains`);
          }
          if (el.attrs.type === "valid") ready("dialback");
          else fail(r, "remote-server-not-found", `${r.remote} refused our dialback key`);
        } else if (el.attrs.xmlns === DIALBACK_NS && el.name === "verify") {
          const v = r.verifies.get(el.attrs.id ?? "");
          if (v) {
            r.verifies.delete(el.attrs.id!);
            v.resolve(el.attrs.type === "valid");
          }
        }
        // (Stanzas never come back over an outgoing stream.)
      },
      streamClose() {
        if (r.state === "ready") close(r);
        else fail(r, "remote-server-not-found", `${r.remote} closed the stream during setup`);
      },
      error(condition, text) {
        log.info("s2s stream to {remote} broke: {condition} {text}", {
          remote: r.remote,
          condition,
          text,
        });
        if (r.state === "ready") close(r);
        else fail(r, "remote-server-not-found", `The stream from ${r.remote} broke (${condition})`);
      },
    }, { defaultNs: NS, maxStanzaSize: MAX_STANZA });
    // (Nothing is read once the route is closed: what the peer still says is of no use.)
    conn.onData = (chunk) => r.state === "closed" || r.conn !== conn || parser.feed(chunk);
    conn.onClose = (unsent) => {
      // Gone before it was ready (TLS failed, the peer hung up): the senders learn it.
      if (r.state !== "ready" && r.state !== "closed") {
        fail(r, "remote-server-not-found", `The connection to ${r.remote} closed during setup`);
      } else close(r);
      resendOrBounce(r, unsent as Stanza[]);
    };
    conn.onError = (e) => {
      log.error("s2s stream to {remote}: {error}", { remote: r.remote, error: e });
      close(r);
    };
    // A peer that does not read: no point waiting for it to take the end of the stream.
    conn.onOverflow = () => {
      close(r);
      conn.destroy();
    };
    if (target.directTls) {
      withOurCertificate(r.local).then((secureContext) =>
        conn.startTlsClient(r.remote, { secureContext, alpn: ALPN })
      ).then(tlsUp);
    } else restart();
  }

  /** Our host's certificate, to show the peer (none if it cannot be had: dialback then). */
  async function withOurCertificate(local: string) {
    try {
      return (await module.loadTls(local)).context;
    } catch (e) {
      log.warn("s2s: no certificate for {local}: {error}", { local, error: e });
      return undefined;
    }
  }

  function sendVerify(r: Route, id: string, key: string) {
    r.conn?.write(
      `<db:verify from='${escapeAttr(r.local)}' to='${escapeAttr(r.remote)}' id='${
        escapeAttr(id)
      }'>${escapeText(key)}</db:verify>`,
    );
  }

  function verify(local: string, remote: string, id: string, key: string): Promise<boolean> {
    // A server that failed lately, too many checks at once, or the same one twice: no.
    const failed = recentlyFailed.get(`${local}|${remote}`);
    if (failed && failed.until > Date.now()) return Promise.resolve(false);
    if (pendingVerifies >= MAX_PENDING_VERIFIES) return Promise.resolve(false);
    const r = routeFor(local, remote);
    if (!r || r.verifies.has(id)) return Promise.resolve(false);
    r.lastUsed = Date.now(); // (a route used for verifications is not idle)
    pendingVerifies++;
    return new Promise((resolve) => {
      const timer = unrefTimeout(() => {
        r.verifies.delete(id);
        pendingVerifies--;
        resolve(false);
      }, ctx.setupTimeoutMs);
      r.verifies.set(id, {
        key,
        resolve: (ok) => {
          clearTimeout(timer);
          pendingVerifies--;
          resolve(ok);
        },
      });
      if (r.state === "open" || r.state === "ready") sendVerify(r, id, key);
      start(r);
    });
  }

  /** The route could not be set up: what waited is bounced to its senders. */
  function fail(r: Route, condition: string, text: string) {
    // Remembered for this pair when stanzas were waiting (a route opened only to verify
    // another's key says nothing of what our users can send).
    if ((r.queue.length > 0 || r.verifyOnly) && recentlyFailed.size < MAX_ROUTES) {
      recentlyFailed.set(`${r.local}|${r.remote}`, {
        until: Date.now() + RETRY_AFTER_MS,
        why: text,
      });
    }
    log.info("s2s route {local} → {remote} failed: {text}", {
      local: r.local,
      remote: r.remote,
      text,
    });
    const queued = takeQueue(r);
    close(r);
    for (const s of queued) bounce(s, "cancel", condition, text);
  }

  /**
   * What a stream never wrote (it broke, or the peer stopped reading): once
   * more on a new route, then back to the sender.
   */
  function resendOrBounce(r: Route, stanzas: Stanza[]) {
    for (const s of stanzas) {
      if (!stopping && !retried.has(s)) {
        retried.add(s);
        if (send(r.local, r.remote, s)) continue;
      }
      bounce(s, "wait", "remote-server-timeout", `The stream to ${r.remote} broke`);
    }
  }

  /** Empties a route's queue. */
  function takeQueue(r: Route): Stanza[] {
    queuedBytes -= r.queueBytes;
    r.queueBytes = 0;
    return r.queue.splice(0);
  }

  /** An error back to the sender (not for errors, results and presence: nobody to tell). */
  function bounce(s: Stanza, type: ErrorType, condition: string, text: string) {
    if (s.attrs.type === "error" || s.attrs.type === "result" || s.name === "presence") return;
    module.send(s.errorReply(type, condition, text));
  }

  function close(r: Route) {
    if (r.state === "closed") return;
    r.state = "closed";
    clearTimeout(r.setupTimer);
    if (routes.get(`${r.local}|${r.remote}`) === r) routes.delete(`${r.local}|${r.remote}`);
    for (const v of r.verifies.values()) v.resolve(false);
    r.verifies.clear();
    if (r.conn && !r.conn.closed) {
      r.conn.write("</stream:stream>");
      r.conn.close();
    }
    // Stanzas still waiting for a route that closed before it was ready are bounced.
    for (const s of takeQueue(r)) {
      bounce(s, "wait", "remote-server-timeout", "The route to the remote server closed");
    }
  }

  function sweep() {
    const now = Date.now();
    for (const [key, f] of recentlyFailed) if (f.until <= now) recentlyFailed.delete(key);
    for (const r of [...routes.values()]) {
      if (r.state === "ready" && now - r.lastUsed > opts.idleSec * 1000) {
        log.debug("closing idle s2s route {local} → {remote}", {
          local: r.local,
          remote: r.remote,
        });
        close(r);
      }
    }
  }

  return {
    send,
    verify,
    sweep,
    closeAll: () => {
      stopping = true;
      for (const r of [...routes.values()]) close(r);
    },
    list: () =>
      [...routes.values()].map((r) => ({
        local: r.local,
        remote: r.remote,
        state: r.state,
        secure: r.conn?.secure ?? false,
        auth: r.auth,
        certificate: r.certificate,
      })),
  };
}

function tryConnect(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port });
    const timer = unrefTimeout(() => {
      socket.destroy();
      reject(new Error("connect timed out"));
    }, 10_000);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
