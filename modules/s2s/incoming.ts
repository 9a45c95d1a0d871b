/**
 * Incoming server-to-server streams: a remote server connects (to
 * `s2s_ports`, or to `s2s_direct_tls_ports` with TLS from the first byte,
 * XEP-0368), encrypts with STARTTLS (offered with the host's certificate;
 * required with `s2s_require_encryption`), and authenticates each domain
 * pair it wants to send for:
 *
 * - with **SASL EXTERNAL** (XEP-0178), offered when the certificate it
 *   showed is trusted and names the domain in its stream's `from`;
 * - with **dialback** (`<db:result/>`, XEP-0220): answered at once when its
 *   certificate is valid for the domain (as Prosody), else after asking the
 *   domain's own server (`<db:verify/>`, over our outgoing route). A domain
 *   that needs a valid certificate (`s2s_secure_auth`, `s2s_secure_domains`)
 *   and shows none is refused, and the reason logged.
 *
 * Stanzas are accepted only for authenticated pairs; anything else ends
 * the stream (`not-authorized`, `invalid-from`, `host-unknown`,
 * `policy-violation` before TLS when it is required).
 *
 * @example
 * ```ts
 * listener = new Listener({ port: 5269, log }, (socket) => acceptStream(ctx, socket, deps));
 * ```
 * @module
 */
import { randomUUID } from "node:crypto";
import { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import type { Origin } from "../../core/router.ts";
import { Connection, type ConnectionOptions } from "../../core/net/connection.ts";
import { StreamParser } from "../../core/xml/parser.ts";
import { escapeAttr, type Stanza } from "../../core/xml/stanza.ts";
import { hostOf, prep, prepDomain } from "../../core/jid.ts";
import { unrefTimeout } from "../../core/timers.ts";
import { checkKey, DIALBACK_FEATURE_NS, DIALBACK_NS } from "./dialback.ts";
import {
  ALPN,
  MAX_STANZA,
  NS,
  type S2sContext,
  SASL_NS,
  streamError,
  streamHeader,
  STREAMS,
  TLS_NS,
  type Verdict,
} from "./context.ts";

/** Dialback requests one incoming stream may have pending, and pairs authenticated. */
const MAX_PENDING_DIALBACK = 4;
const MAX_PAIRS = 64;

export interface IncomingDeps {
  /** Asks the claimed domain's server whether a dialback key is its own. */
  verify(local: string, remote: string, id: string, key: string): Promise<boolean>;
  /** Open incoming streams, and the domain pairs each authenticated ("remote|local" → how). */
  streams: Map<Connection, Map<string, string>>;
  rate?: ConnectionOptions["rate"];
}

/** Serves one connection from another server. */
export function acceptStream(
  ctx: S2sContext,
  socket: Socket,
  deps: IncomingDeps,
  directTls = false,
): void {
  const { module, log } = ctx;
  const received = module.stanzaCounters.received;
  const conn = new Connection(socket, false, { rate: deps.rate, ...ctx.output });
  let id = randomUUID();
  /** Authenticated "remote|local" pairs, and how. */
  const pairs = new Map<string, string>();
  deps.streams.set(conn, pairs);
  /** Dialback requests being checked. */
  let asking = 0;
  let local = "";
  /** The domain the peer's stream header says it is (`from`), if it says. */
  let peer = "";
  let opened = false, saslDone = false;
  /** The peer's certificate, judged per domain (once each). */
  const verdicts = new Map<string, Verdict>();
  const certFor = (domain: string): Verdict => {
    if (!conn.secure) return { ok: false, reason: "no TLS" }; // (not kept: TLS may follow)
    let v = verdicts.get(domain);
    if (!v) {
      v = ctx.judgeCertificate(conn.peerCertificates(), domain);
      if (verdicts.size < MAX_PAIRS) verdicts.set(domain, v);
    }
    return v;
  };
  const end = (condition: string, text?: string) => {
    conn.stopReading();
    if (!opened) {
      opened = true;
      conn.write(streamHeader({ id }));
    }
    conn.write(streamError(condition, text));
    conn.close();
  };
  const timer = unrefTimeout(() => {
    if (pairs.size === 0) end("connection-timeout", "Not authenticated in time");
  }, ctx.setupTimeoutMs);
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

  function sendFeatures(tls: boolean) {
    let features = "";
    if (!conn.secure && tls) {
      features += `<starttls xmlns='${TLS_NS}'>${
        ctx.requireEncryption ? "<required/>" : ""
      }</starttls>`;
    }
    if (conn.secure && !saslDone && peer && certFor(peer).ok) {
      features += `<mechanisms xmlns='${SASL_NS}'><mechanism>EXTERNAL</mechanism></mechanisms>`;
    }
    if (conn.secure || !ctx.requireEncryption) {
      features += `<dialback xmlns='${DIALBACK_FEATURE_NS}'><errors/></dialback>`;
    }
    conn.write(`<stream:features>${features}</stream:features>`);
  }

  function startTls(host: string) {
    const tls = module.tlsFor(host);
    if (!tls) return false;
    conn.startTls(
      tls.context,
      (name) => {
        const h = prepDomain(name);
        return h === undefined ? undefined : module.tlsFor(h)?.context;
      },
      directTls ? ALPN : undefined,
      true, // the peer's certificate, for SASL EXTERNAL and the secure-auth policy
    );
    return true;
  }

  const parser = new StreamParser({
    streamOpen(attrs) {
      local = attrs.to ?? "";
      if (local && module.hostType(local) === undefined) {
        return end("host-unknown", `This server does not serve ${local}`);
      }
      const from = attrs.from ? prepDomain(attrs.from) : undefined;
      if (from && !saslDone) peer = from;
      opened = true;
      id = randomUUID(); // a new id after TLS too
      conn.write(streamHeader({ id, ...(local ? { from: local } : {}), version: "1.0" }));
      // The host's certificate may still be on its way (a component's, just activated).
      if (!local || conn.secure || module.tlsFor(local)) sendFeatures(!!module.tlsFor(local));
      else module.loadTls(local).then(() => sendFeatures(true), () => sendFeatures(false));
    },
    stanza(el) {
      if (el.name === "error" && el.attrs.xmlns === STREAMS) {
        ctx.remoteError(el, `from ${peer || "?"} to ${local || "?"}`);
        conn.close();
        return;
      }
      if (el.name === "starttls" && el.attrs.xmlns === TLS_NS) {
        // TLS comes first (RFC 6120 §5.3.1), never after authentication has begun.
        if (conn.secure || !local || pairs.size > 0 || asking > 0 || !startTlsFor(local)) {
          conn.write(`<failure xmlns='${TLS_NS}'/>`);
          return end("undefined-condition", "TLS is not available");
        }
        return;
      }
      if (!conn.secure && ctx.requireEncryption) {
        return end("policy-violation", "Encrypted server-to-server streams are required");
      }
      if (el.attrs.xmlns === SASL_NS) return sasl(el);
      if (el.attrs.xmlns === DIALBACK_NS) return void dialback(el);
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
        if ([...pairs.keys()].some((p) => p.endsWith(`|${toHost}`))) {
          return end("invalid-from", `${fromHost} is not authenticated on this stream`);
        }
        return end("not-authorized", "Authenticate first");
      }
      received.count(el.name);
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

  /** STARTTLS: <proceed/>, then nothing more read in the clear. */
  function startTlsFor(host: string): boolean {
    if (!module.tlsFor(host)) return false;
    conn.write(`<proceed xmlns='${TLS_NS}'/>`);
    startTls(host);
    parser.reset();
    return true;
  }

  conn.onData = (chunk) => parser.feed(chunk);
  conn.onClose = () => {
    clearTimeout(timer);
    deps.streams.delete(conn);
  };
  conn.onOverflow = () => end("policy-violation", "Too much output waiting");
  if (directTls) {
    // XEP-0368: the certificate of the host the peer names (SNI), else the first host's.
    const first = module.localHosts()[0];
    if (!first || !startTls(first)) return end("internal-server-error", "No certificate");
  }

  /** SASL EXTERNAL (XEP-0178): the certificate speaks for the stream's `from`. */
  function sasl(el: Stanza) {
    const failure = (condition: string) =>
      conn.write(`<failure xmlns='${SASL_NS}'><${condition}/></failure>`);
    if (el.name !== "auth") return failure("aborted");
    if (saslDone || !local) return end("policy-violation", "Already authenticated");
    if (el.attrs.mechanism !== "EXTERNAL") return failure("invalid-mechanism");
    const text = el.getText().trim();
    const authzid = text === "" || text === "="
      ? peer
      : prepDomain(Buffer.from(text, "base64").toString("utf8")) ?? "";
    const verdict = peer ? certFor(peer) : { ok: false, reason: "the stream has no from" };
    if (!authzid || authzid !== peer || !verdict.ok) {
      log.info("s2s from {peer} for {local}: SASL EXTERNAL refused ({reason})", {
        peer: authzid || peer || "?",
        local,
        reason: verdict.ok ? `it asked to be ${authzid || "nobody"}` : verdict.reason,
      });
      return failure("not-authorized");
    }
    if (module.hostType(peer) !== undefined) return end("invalid-from", "That is our own domain");
    saslDone = true;
    pairs.set(`${peer}|${local}`, "SASL EXTERNAL");
    log.info("s2s from {from} for {to}: authenticated (certificate, SASL EXTERNAL)", {
      from: peer,
      to: local,
    });
    conn.write(`<success xmlns='${SASL_NS}'/>`);
    parser.reset(); // the peer opens a new stream
  }

  async function dialback(el: Stanza) {
    const from = el.attrs.from ?? "", to = el.attrs.to ?? "";
    if (el.name === "verify") {
      // The remote server asks whether a key given to it is ours.
      const ok = module.hostType(to) !== undefined &&
        checkKey(ctx.secret, el.getText(), from, to, el.attrs.id ?? "");
      conn.write(
        `<db:verify from='${escapeAttr(to)}' to='${escapeAttr(from)}' id='${
          escapeAttr(el.attrs.id ?? "")
        }' type='${ok ? "valid" : "invalid"}'/>`,
      );
      return;
    }
    if (el.name !== "result" || el.attrs.type !== undefined) return;
    const claimed = prepDomain(from); // (the domain as stanzas will carry it)
    // Each request makes us ask the claimed domain's server: a few at a time per stream.
    if (asking >= MAX_PENDING_DIALBACK || pairs.size >= MAX_PAIRS) {
      return end("policy-violation", "Too many dialback requests");
    }
    if (module.hostType(to) === undefined || (local && to !== local)) {
      return end("host-unknown", `This server does not serve ${to}`);
    }
    if (!from || claimed !== from) return end("invalid-from", "Not a domain in its normal form");
    if (module.hostType(from) !== undefined) return end("invalid-from", "That is our own domain");
    const cert = certFor(from);
    if (!cert.ok && ctx.secureAuthFor(to, from)) {
      log.warn("s2s from {from} for {to} refused: its certificate is not valid ({reason})", {
        from,
        to,
        reason: cert.reason,
      });
      return end("not-authorized", `A valid certificate for ${from} is required by ${to}`);
    }
    let valid: boolean;
    if (cert.ok) {
      valid = true; // the certificate proves the domain (XEP-0344): no need to ask
    } else {
      asking++;
      valid = await deps.verify(to, from, id, el.getText()).finally(() => asking--);
    }
    log.info("s2s from {from} for {to}: {how} {result}", {
      from,
      to,
      how: cert.ok ? "certificate (dialback request)" : "dialback",
      result: valid ? "valid" : "invalid",
    });
    if (valid) pairs.set(`${from}|${to}`, cert.ok ? "certificate (dialback)" : "dialback");
    conn.write(
      `<db:result from='${escapeAttr(to)}' to='${escapeAttr(from)}' type='${
        valid ? "valid" : "invalid"
      }'/>`,
    );
    if (!valid && pairs.size === 0) end("not-authorized", "Dialback failed");
  }
}
