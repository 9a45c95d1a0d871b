/**
 * What the outgoing and incoming halves of s2s share: the module, the
 * options, the dialback secret, and the certificate policy — which roots
 * are trusted (`s2s_cafile`), and for which remote domains a valid
 * certificate is required (`s2s_secure_auth`, `s2s_secure_domains`,
 * `s2s_insecure_domains`, read per local host as Prosody's).
 *
 * @example
 * ```ts
 * const verdict = ctx.judgeCertificate(conn.peerCertificates(), "example.com");
 * if (!verdict.ok && ctx.secureAuthFor("localhost", "example.com")) refuse(verdict.reason);
 * ```
 * @module
 */
import type { X509Certificate } from "node:crypto";
import type { Module } from "../../core/moduleapi.ts";
import { escapeAttr, type Stanza, streamErrorXml } from "../../core/xml/stanza.ts";
import { certIdentities, certMatchesDomain, verifyChain } from "./certs.ts";
import { DIALBACK_NS } from "./dialback.ts";
import { streamErrorLevel } from "./stream_errors.ts";

export const NS = "jabber:server";
export const STREAMS = "http://etherx.jabber.org/streams";
export const STREAMS_NS = "urn:ietf:params:xml:ns:xmpp-streams";
export const TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls";
export const SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl";
/** XEP-0368's ALPN protocol for direct TLS between servers. */
export const ALPN = ["xmpp-server"];
export const MAX_STANZA = 512 * 1024;

/** A server stream's opening tag. */
export const streamHeader = (attrs: Record<string, string>) =>
  `<?xml version='1.0'?><stream:stream xmlns='${NS}' xmlns:stream='${STREAMS}' ` +
  `xmlns:db='${DIALBACK_NS}'` +
  Object.entries(attrs).map(([k, v]) => ` ${k}='${escapeAttr(v)}'`).join("") + ">";

/** A stream error and the end of the stream. */
export const streamError = (condition: string, text?: string) =>
  streamErrorXml(condition, text) + "</stream:stream>";

/** Which remote domains need a valid certificate, for one local host. */
export interface SecurePolicy {
  secureAuth: boolean;
  secureDomains: Set<string>;
  insecureDomains: Set<string>;
}

/** A certificate judged for a domain: good, or why not. */
export type Verdict = { ok: true } | { ok: false; reason: string };

export class S2sContext {
  readonly log: Module["log"];
  /** Per local host; hosts without their own use the global options. */
  readonly policies = new Map<string, SecurePolicy>();

  constructor(
    readonly module: Module,
    /** XEP-0185: keys last as long as this process. */
    readonly secret: string,
    readonly requireEncryption: boolean,
    readonly anchors: X509Certificate[],
    readonly globalPolicy: SecurePolicy,
    /** How long connecting and authenticating may take (`s2s_connect_timeout`). */
    readonly setupTimeoutMs: number,
    /** Output a slow peer may leave waiting (`max_send_buffer_size`, `send_timeout`). */
    readonly output: { maxSendBuffer: number; sendTimeoutMs: number },
  ) {
    this.log = module.log;
  }

  /** Whether `remote` must show a valid certificate to talk with `local`. */
  secureAuthFor(local: string, remote: string): boolean {
    const p = this.policies.get(local) ?? this.globalPolicy;
    return (p.secureAuth && !p.insecureDomains.has(remote)) || p.secureDomains.has(remote);
  }

  /** Whether a peer's chain (DER, its own first) is trusted and names `domain`. */
  judgeCertificate(chain: Uint8Array[], domain: string): Verdict {
    if (chain.length === 0) return { ok: false, reason: "no certificate" };
    let names;
    try {
      names = certIdentities(chain[0]);
    } catch (e) {
      return { ok: false, reason: `unreadable certificate (${(e as Error).message})` };
    }
    const trust = verifyChain(chain, this.anchors);
    if (!trust.ok) return trust;
    if (!certMatchesDomain(names, domain)) {
      return { ok: false, reason: `certificate not valid for ${domain}` };
    }
    return { ok: true };
  }

  /** A remote server ended a stream with an error: logged as loudly as it deserves. */
  remoteError(el: Stanza, where: string): void {
    const condition = el.tags().find((c) => c.name !== "text")?.name ?? "undefined-condition";
    const text = el.getChildText("text", STREAMS_NS) ?? "";
    this.log[streamErrorLevel(condition, text)](
      "s2s stream {where} closed by the remote server: {condition}{text}",
      { where, condition, text: text ? ` (${text})` : "" },
    );
  }
}
