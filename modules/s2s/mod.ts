/**
 * Server-to-server streams (RFC 6120) with STARTTLS and server dialback
 * (XEP-0220, keys as XEP-0185), as Prosody's mod_s2s and mod_dialback — the
 * first part of federation. Not on by default yet (`modules_enabled: [...,
 * "s2s"]`): certificate authentication (SASL EXTERNAL, `s2s_secure_auth`)
 * and direct TLS come next.
 *
 * Outgoing: a stanza for a domain this server does not have opens one
 * route per (local domain, remote domain): the remote server is found by
 * its SRV records (`core/net/srv.ts`; `s2s_dns_server` asks a given DNS
 * server), each target tried in order; the stream is encrypted with
 * STARTTLS when offered (required with `s2s_require_encryption`, the
 * default) and authenticated by dialback — the peer's certificate is not
 * checked yet, as with Prosody's `s2s_secure_auth = false`; stanzas wait
 * meanwhile (at most 100 per route) and, when it fails, the senders get
 * `remote-server-not-found` (no server reached or refused) or
 * `remote-server-timeout`. A route idle for `s2s_timeout` (300 s) closes.
 *
 * Incoming: on `s2s_ports` (5269), STARTTLS is offered (required with
 * `s2s_require_encryption`) with the host's certificate; a remote server
 * asks for a domain pair with `<db:result/>`; this server checks the key
 * with the remote domain's own server (`<db:verify/>`, over its outgoing
 * route) and answers. Stanzas are accepted only for authenticated pairs:
 * anything else ends the stream (`not-authorized`, `invalid-from`,
 * `host-unknown`, `policy-violation` before TLS when it is required).
 * @module
 */
import { randomUUID } from "node:crypto";
import { connect, type Socket } from "node:net";
import type { Module } from "../../core/moduleapi.ts";
import type { Origin } from "../../core/router.ts";
import { Connection } from "../../core/net/connection.ts";
import { Listener } from "../../core/net/listener.ts";
import { resolveServer } from "../../core/net/srv.ts";
import { StreamParser } from "../../core/xml/parser.ts";
import { escapeAttr, escapeText, type Stanza, streamErrorXml } from "../../core/xml/stanza.ts";
import { hostOf, prep } from "../../core/jid.ts";
import { unrefTimeout } from "../../core/timers.ts";
import { checkKey, DIALBACK_FEATURE_NS, DIALBACK_NS, dialbackKey } from "./dialback.ts";
import { streamErrorLevel } from "./stream_errors.ts";
import { readRate } from "../c2s/settings.ts";

export const meta = { scope: "global" };

const NS = "jabber:server";
const STREAMS = "http://etherx.jabber.org/streams";
const STREAMS_NS = "urn:ietf:params:xml:ns:xmpp-streams";
const TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls";
/** Stanzas one route keeps while it is being set up. */
const MAX_QUEUE = 100;
/** Routes (outgoing streams) at once, and dialback requests one incoming stream may have pending and authenticated. */
const MAX_ROUTES = 1000;
const MAX_PENDING_DIALBACK = 4;
const MAX_PAIRS = 64;
/** How long a failed remote server is not tried again (stanzas for it bounce at once). */
const RETRY_AFTER_MS = 60_000;
/** How long connecting, or authenticating, may take. */
const SETUP_TIMEOUT_MS = 30_000;
const MAX_STANZA = 512 * 1024;

const header = (attrs: Record<string, string>) =>
  `<?xml version='1.0'?><stream:stream xmlns='${NS}' xmlns:stream='${STREAMS}' ` +
  `xmlns:db='${DIALBACK_NS}'` +
  Object.entries(attrs).map(([k, v]) => ` ${k}='${escapeAttr(v)}'`).join("") + ">";

const streamError = (condition: string, text?: string) =>
  streamErrorXml(condition, text) + "</stream:stream>";

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
  /** Dialback verifications waiting to be sent once the stream is open, and their answers. */
  verifies: Map<string, { key: string; resolve: (valid: boolean) => void }>;
  lastUsed: number;
}

export default async function s2s(module: Module) {
  const log = module.log;

  /** A remote server ended a stream with an error: logged as loudly as it deserves. */
  function remoteError(el: Stanza, where: string) {
    const condition = el.tags().find((c) => c.name !== "text")?.name ?? "undefined-condition";
    const text = el.getChildText("text", STREAMS_NS) ?? "";
    log[streamErrorLevel(condition, text)](
      "s2s stream {where} closed by the remote server: {condition}{text}",
      { where, condition, text: text ? ` (${text})` : "" },
    );
  }
  const secret = randomUUID(); // XEP-0185: keys last as long as this process
  const routes = new Map<string, Route>();
  /** Domain pairs ("local|remote") whose route failed lately: not tried again before `until`. */
  const recentlyFailed = new Map<string, { until: number; why: string }>();
  const dnsOption = module.getOptionString("s2s_dns_server");
  const nameServer = dnsOption ? parseNameServer(dnsOption) : undefined;
  const idleSec = module.getOptionPeriod("s2s_timeout", 300);
  const requireEncryption = module.getOptionBoolean("s2s_require_encryption", true)!;
  // What one remote server may send us (mod_limits' s2sin; a whole server's traffic: 1 MB/s).
  const inboundRate = readRate(module, "s2sin", 1_000_000);
  const listeners: Listener[] = [];
  /** Streams other servers opened to us. */
  const incoming = new Set<Connection>();

  // --- outgoing ----------------------------------------------------------------------

  function routeFor(local: string, remote: string): Route | undefined {
    const key = `${local}|${remote}`;
    let r = routes.get(key);
    if (!r || r.state === "closed") {
      if (routes.size >= MAX_ROUTES) return undefined;
      r = {
        local,
        remote,
        state: "connecting",
        started: false,
        queue: [],
        verifies: new Map(),
        lastUsed: Date.now(),
      };
      routes.set(key, r);
    }
    return r;
  }

  /** Sets the route up, once (after what it is for has been put in it). */
  function start(r: Route) {
    if (r.started) return;
    r.started = true;
    open(r).catch((e) => fail(r, "remote-server-not-found", String(e?.message ?? e)));
  }

  /** Sends a stanza to a remote domain (queued until its route is ready). */
  function sendRemote(local: string, remote: string, stanza: Stanza): boolean {
    // Only this server's domains send through it (never a relay for others').
    if (module.hostType(local) === undefined) return false;
    // A server that just failed is not tried again at once (each presence broadcast would).
    const failed = recentlyFailed.get(`${local}|${remote}`);
    if (failed && failed.until > Date.now()) {
      const type = stanza.attrs.type;
      if (type !== "error" && type !== "result" && stanza.name !== "presence") {
        module.send(stanza.errorReply("cancel", "remote-server-not-found", failed.why));
      }
      return true;
    }
    recentlyFailed.delete(`${local}|${remote}`);
    const r = routeFor(local, remote);
    if (!r) return false;
    r.lastUsed = Date.now();
    if (r.state === "ready") return r.conn!.write(stanza.toString());
    if (r.queue.length >= MAX_QUEUE) return false;
    r.queue.push(stanza);
    start(r);
    return true;
  }

  async function open(r: Route) {
    const targets = await resolveServer(r.remote, { nameServer });
    let socket: Socket | undefined;
    for (const t of targets) {
      if (t.directTls) continue; // (direct TLS comes with TLS)
      socket = await tryConnect(t.address, t.port).catch((e) => {
        log.debug("s2s to {remote}: {where} failed: {error}", {
          remote: r.remote,
          where: `${t.address}:${t.port}`,
          error: e,
        });
        return undefined;
      });
      if (socket) break;
    }
    if (!socket) return fail(r, "remote-server-not-found", `No server for ${r.remote} answered`);
    if (r.state === "closed") return void socket.destroy();
    const conn = new Connection(socket, false);
    r.conn = conn;
    let starttlsSent = false;
    const timer = unrefTimeout(() => {
      if (r.state !== "ready") {
        fail(r, "remote-server-timeout", `${r.remote} did not authenticate in time`);
      }
    }, SETUP_TIMEOUT_MS);
    const parser = new StreamParser({
      streamOpen(attrs) {
        r.streamId = attrs.id; // (the key is made with the id of the stream after TLS)
      },
      stanza(el) {
        if (el.name === "error" && el.attrs.xmlns === STREAMS) {
          remoteError(el, `${r.local} → ${r.remote}`);
          return close(r);
        }
        if (el.name === "features" && el.attrs.xmlns === STREAMS) {
          if (!conn.secure && el.getChild("starttls", TLS_NS)) {
            conn.write(`<starttls xmlns='${TLS_NS}'/>`);
            starttlsSent = true;
            return;
          }
          if (!conn.secure && requireEncryption) {
            return fail(r, "remote-server-not-found", `${r.remote} offers no TLS`);
          }
          // Our key for this stream; and any verification waiting for a stream to go over.
          r.state = "open";
          conn.write(
            `<db:result from='${escapeAttr(r.local)}' to='${escapeAttr(r.remote)}'>` +
              dialbackKey(secret, r.remote, r.local, r.streamId ?? "") + "</db:result>",
          );
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
          conn.startTlsClient(r.remote).then(({ authorized, error }) => {
            // A certificate that does not validate is no reason to stop: dialback
            // authenticates (s2s_secure_auth would refuse it; see the module doc).
            log.debug("s2s TLS to {remote}: certificate {state}", {
              remote: r.remote,
              state: authorized ? "valid" : `not valid (${error})`,
            });
            if (r.state === "closed") return;
            conn.write(header({ from: r.local, to: r.remote, version: "1.0" }));
          });
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
          if (el.attrs.type === "valid") {
            clearTimeout(timer);
            r.state = "ready";
            log.info("s2s route {local} → {remote} authenticated (dialback)", {
              local: r.local,
              remote: r.remote,
            });
            for (const s of r.queue.splice(0)) conn.write(s.toString());
          } else {
            fail(r, "remote-server-not-found", `${r.remote} refused our dialback key`);
          }
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
        close(r);
      },
      error(condition, text) {
        log.info("s2s stream to {remote} broke: {condition} {text}", {
          remote: r.remote,
          condition,
          text,
        });
        close(r);
      },
    }, { defaultNs: NS, maxStanzaSize: MAX_STANZA });
    conn.onData = (chunk) => parser.feed(chunk);
    conn.onClose = () => {
      clearTimeout(timer);
      // Gone before it was ready (TLS failed, the peer hung up): the senders learn it.
      if (r.state !== "ready" && r.state !== "closed") {
        fail(r, "remote-server-not-found", `The connection to ${r.remote} closed during setup`);
      } else close(r);
    };
    conn.onOverflow = () => close(r);
    conn.write(header({ from: r.local, to: r.remote, version: "1.0" }));
  }

  function sendVerify(r: Route, id: string, key: string) {
    r.conn?.write(
      `<db:verify from='${escapeAttr(r.local)}' to='${escapeAttr(r.remote)}' id='${
        escapeAttr(id)
      }'>${escapeText(key)}</db:verify>`,
    );
  }

  /** Asks `remote`'s server whether a key it gave us is its own (XEP-0220 §2.1.2). */
  function verify(local: string, remote: string, id: string, key: string): Promise<boolean> {
    const r = routeFor(local, remote);
    if (!r) return Promise.resolve(false);
    r.lastUsed = Date.now(); // (a route used for verifications is not idle)
    return new Promise((resolve) => {
      const timer = unrefTimeout(() => {
        r.verifies.delete(id);
        resolve(false);
      }, SETUP_TIMEOUT_MS);
      r.verifies.set(id, {
        key,
        resolve: (ok) => {
          clearTimeout(timer);
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
    if (r.queue.length > 0 && recentlyFailed.size < MAX_ROUTES) {
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
    const queued = r.queue.splice(0);
    close(r);
    for (const s of queued) {
      const type = s.attrs.type;
      if (type === "error" || type === "result" || s.name === "presence") continue;
      module.send(s.errorReply("cancel", condition, text));
    }
  }

  function close(r: Route) {
    if (r.state === "closed") return;
    r.state = "closed";
    if (routes.get(`${r.local}|${r.remote}`) === r) routes.delete(`${r.local}|${r.remote}`);
    for (const v of r.verifies.values()) v.resolve(false);
    r.verifies.clear();
    if (r.conn && !r.conn.closed) {
      r.conn.write("</stream:stream>");
      r.conn.close();
    }
    // Stanzas still waiting for a route that closed before it was ready are bounced.
    const queued = r.queue.splice(0);
    for (const s of queued) {
      const type = s.attrs.type;
      if (type === "error" || type === "result" || s.name === "presence") continue;
      module.send(
        s.errorReply("wait", "remote-server-timeout", "The route to the remote server closed"),
      );
    }
  }

  module.addTimer(60, () => {
    const now = Date.now();
    for (const [key, f] of recentlyFailed) if (f.until <= now) recentlyFailed.delete(key);
    for (const r of [...routes.values()]) {
      if (r.state === "ready" && now - r.lastUsed > idleSec * 1000) {
        log.debug("closing idle s2s route {local} → {remote}", {
          local: r.local,
          remote: r.remote,
        });
        close(r);
      }
    }
    return 60;
  });

  // --- incoming ----------------------------------------------------------------------

  const ports = module.getOption<number[]>("s2s_ports", [5269]);
  const interfaces = module.getOption<string[]>(
    "s2s_interfaces",
    module.getOption<string[]>("interfaces", ["*"]),
  );
  for (const iface of interfaces) {
    for (const port of ports) {
      const l = new Listener({ host: iface === "*" ? undefined : iface, port, log }, accept);
      await l.start();
      listeners.push(l);
      log.info("s2s listening on {where}", { where: l.address() });
    }
  }

  function accept(socket: Socket) {
    const conn = new Connection(socket, false, { rate: inboundRate });
    incoming.add(conn);
    let id = randomUUID();
    /** Authenticated "remote|local" pairs. */
    const pairs = new Set<string>();
    /** Dialback requests being checked. */
    let asking = 0;
    let local = "";
    let opened = false;
    const end = (condition: string, text?: string) => {
      conn.stopReading();
      if (!opened) {
        opened = true;
        conn.write(header({ id }));
      }
      conn.write(streamError(condition, text));
      conn.close();
    };
    const timer = unrefTimeout(() => {
      if (pairs.size === 0) end("connection-timeout", "Not authenticated in time");
    }, SETUP_TIMEOUT_MS * 2);
    // Where stanzas from this stream come from: answers to them are routed (over our own
    // outgoing route: s2s streams go one way), never written back on this stream.
    const origins = new Map<string, Origin>();
    const originFor = (host: string): Origin => {
      let o = origins.get(host);
      if (!o) {
        const origin: Origin = {
          type: "s2sin",
          host,
          send: (stanza) => {
            if (typeof stanza === "string") return false;
            module.send(stanza, origin);
            return true;
          },
        };
        origins.set(host, o = origin);
      }
      return o;
    };
    const parser = new StreamParser({
      streamOpen(attrs) {
        local = attrs.to ?? "";
        if (local && module.hostType(local) === undefined) {
          return end("host-unknown", `This server does not serve ${local}`);
        }
        opened = true;
        id = randomUUID(); // a new id after TLS too
        conn.write(header({ id, ...(local ? { from: local } : {}), version: "1.0" }));
        const sendFeatures = (tls: boolean) => {
          let features = "";
          if (!conn.secure && tls) {
            features += `<starttls xmlns='${TLS_NS}'>${
              requireEncryption ? "<required/>" : ""
            }</starttls>`;
          }
          if (conn.secure || !requireEncryption) {
            features += `<dialback xmlns='${DIALBACK_FEATURE_NS}'><errors/></dialback>`;
          }
          conn.write(`<stream:features>${features}</stream:features>`);
        };
        // The host's certificate may still be on its way (a component's, just activated).
        if (!local || conn.secure || module.tlsFor(local)) sendFeatures(!!module.tlsFor(local));
        else module.loadTls(local).then(() => sendFeatures(true), () => sendFeatures(false));
      },
      stanza(el) {
        if (el.name === "error" && el.attrs.xmlns === STREAMS) {
          remoteError(el, `from ${[...pairs][0]?.split("|")[0] ?? "?"} to ${local || "?"}`);
          conn.close();
          return;
        }
        if (el.name === "starttls" && el.attrs.xmlns === TLS_NS) {
          const tls = local ? module.tlsFor(local) : undefined;
          // TLS comes first (RFC 6120 §5.3.1), never after authentication has begun.
          if (conn.secure || !tls || pairs.size > 0 || asking > 0) {
            conn.write(`<failure xmlns='${TLS_NS}'/>`);
            return end("undefined-condition", "TLS is not available");
          }
          conn.write(`<proceed xmlns='${TLS_NS}'/>`);
          conn.startTls(tls.context, (name) => module.tlsFor(name)?.context);
          parser.reset();
          return;
        }
        if (!conn.secure && requireEncryption) {
          return end("policy-violation", "Encrypted server-to-server streams are required");
        }
        if (el.attrs.xmlns === DIALBACK_NS) return dialback(el);
        if (el.name !== "message" && el.name !== "presence" && el.name !== "iq") {
          return end("unsupported-stanza-type");
        }
        // Addresses as the router will read them (a domain in a resource is no domain).
        const from = prep(el.attrs.from ?? ""), to = prep(el.attrs.to ?? "");
        if (from === undefined || to === undefined) {
          return end("improper-addressing", "Stanzas need valid from and to addresses");
        }
        el.attrs.from = from;
        el.attrs.to = to;
        const fromHost = hostOf(from), toHost = hostOf(to);
        if (module.hostType(toHost) === undefined) {
          return end("host-unknown", `This server does not serve ${toHost}`);
        }
        if (!pairs.has(`${fromHost}|${toHost}`)) {
          if ([...pairs].some((p) => p.endsWith(`|${toHost}`))) {
            return end("invalid-from", `${fromHost} is not authenticated on this stream`);
          }
          return end("not-authorized", "Authenticate with dialback first");
        }
        module.send(el, originFor(toHost));
      },
      streamClose() {
        conn.write("</stream:stream>");
        conn.close();
      },
      error(condition, text) {
        end(condition, text);
      },
    }, { defaultNs: NS, maxStanzaSize: MAX_STANZA });
    conn.onData = (chunk) => parser.feed(chunk);
    conn.onClose = () => {
      clearTimeout(timer);
      incoming.delete(conn);
    };
    conn.onOverflow = () => end("policy-violation", "Too much output waiting");

    async function dialback(el: Stanza) {
      const from = el.attrs.from ?? "", to = el.attrs.to ?? "";
      if (el.name === "verify") {
        // The remote server asks whether a key given to it is ours.
        const ok = module.hostType(to) !== undefined &&
          checkKey(secret, el.getText(), from, to, el.attrs.id ?? "");
        conn.write(
          `<db:verify from='${escapeAttr(to)}' to='${escapeAttr(from)}' id='${
            escapeAttr(el.attrs.id ?? "")
          }' type='${ok ? "valid" : "invalid"}'/>`,
        );
        return;
      }
      if (el.name !== "result" || el.attrs.type !== undefined) return;
      // Each request makes us ask the claimed domain's server: a few at a time per stream.
      if (asking >= MAX_PENDING_DIALBACK || pairs.size >= MAX_PAIRS) {
        return end("policy-violation", "Too many dialback requests");
      }
      if (module.hostType(to) === undefined || (local && to !== local)) {
        return end("host-unknown", `This server does not serve ${to}`);
      }
      if (!from || from.includes("@") || from.includes("/")) return end("invalid-from");
      if (module.hostType(from) !== undefined) return end("invalid-from", "That is our own domain");
      asking++;
      const valid = await verify(to, from, id, el.getText()).finally(() => asking--);
      log.info("s2s from {from} for {to}: dialback {result}", {
        from,
        to,
        result: valid ? "valid" : "invalid",
      });
      if (valid) pairs.add(`${from}|${to}`);
      conn.write(
        `<db:result from='${escapeAttr(to)}' to='${escapeAttr(from)}' type='${
          valid ? "valid" : "invalid"
        }'/>`,
      );
      if (!valid && pairs.size === 0) end("not-authorized", "Dialback failed");
    }
  }

  module.exports.sendRemote = sendRemote;
  // Components load only their own module: their stanzas for other servers go through s2s too.
  const forComponent = (host: string) => {
    if (module.hostType(host) !== "component") return;
    // Its certificate, for STARTTLS on streams to it (made self-signed when none is configured).
    module.loadTls(host).catch((e) =>
      log.warn("no TLS for component {host}: {error}", { host, error: e })
    );
    module.hookHost(host, "route/remote", (e: RemoteEvent) => routeRemote(sendRemote, e));
  };
  for (const host of module.components()) forComponent(host); // (those already there)
  module.hookGlobal("host-activated", (host: string) => forComponent(host));
  module.hookGlobal("server-stopping", () => {
    for (const l of listeners) l.close();
    for (const r of [...routes.values()]) close(r);
    // Streams from other servers end too (they reconnect to wherever we are next).
    for (const conn of incoming) {
      conn.write(streamError("system-shutdown"));
      conn.close();
    }
  });
}

/** Each host sends what is for other domains through s2s. */
export async function addHost(hostModule: Module) {
  // The host's certificate (made self-signed when none is configured), for STARTTLS.
  await hostModule.loadTls();
  const sendRemote = hostModule.exports.sendRemote as (
    local: string,
    remote: string,
    stanza: Stanza,
  ) => boolean;
  // Presence and the like go to remote contacts too now (modules ask for "federation").
  hostModule.addItem("federation", { module: "s2s" });
  hostModule.hook("route/remote", (e: RemoteEvent) => routeRemote(sendRemote, e));
}

interface RemoteEvent {
  origin: Origin;
  stanza: Stanza;
  from_host: string;
  to_host: string;
}

/** A stanza for another server: onto its route, or an error back. */
function routeRemote(
  sendRemote: (local: string, remote: string, stanza: Stanza) => boolean,
  { origin, stanza, from_host, to_host }: RemoteEvent,
) {
  const from = stanza.attrs.from === undefined ? from_host : prep(stanza.attrs.from);
  if (from !== undefined && sendRemote(hostOf(from), to_host, stanza)) return true;
  const type = stanza.attrs.type;
  if (type !== "error" && type !== "result") {
    origin.send(stanza.errorReply("wait", "resource-constraint", "Cannot send to that server now"));
  }
  return true;
}

function tryConnect(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port });
    const timer = setTimeout(() => {
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

/** "1.2.3.4", "1.2.3.4:53", "::1" or "[::1]:53". */
function parseNameServer(s: string): { ipAddr: string; port: number } {
  const m = s.match(/^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/) ?? s.match(/^([0-9.]+)(?::(\d+))?$/) ??
    s.match(/^([0-9a-fA-F:]+)()$/);
  if (!m) throw new Error(`option s2s_dns_server: expected "address" or "address:port", got ${s}`);
  return { ipAddr: m[1], port: m[2] ? Number(m[2]) : 53 };
}
