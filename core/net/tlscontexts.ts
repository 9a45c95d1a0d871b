/**
 * TLS material per host: the `node:tls` secure context built from the host's
 * certificate (generated self-signed on first use when none is configured),
 * and the RFC 5929 `tls-server-end-point` channel-binding data for SCRAM-PLUS.
 *
 * @example
 * ```ts
 * const tls = await contexts.get("localhost");
 * conn.startTls(tls.context);
 * ```
 * @module
 */
import { createSecureContext, type SecureContext } from "node:tls";
import type { ResolvedConfig } from "../config.ts";
import { ensureCertificate } from "./certs.ts";
import { pemToDer, tlsServerEndPoint } from "../sasl/channel_binding.ts";

export interface HostTls {
  context: SecureContext;
  /** tls-server-end-point channel-binding data (hash of our certificate). */
  endPoint: Uint8Array;
  /** The certificate (with its chain) and key as PEM, for servers that take them so (HTTPS). */
  certPem: string;
  keyPem: string;
}

export class TlsContexts {
  private byHost = new Map<string, Promise<HostTls>>();

  constructor(private config: ResolvedConfig) {}

  /**
   * Reads certificates again from now on (with a new configuration); what
   * was loaded keeps serving new connections until its replacement is.
   */
  reset(config: ResolvedConfig): void {
    this.config = config;
    this.byHost.clear();
  }

  /** Loads (once) the TLS material of a host. */
  get(host: string): Promise<HostTls> {
    let p = this.byHost.get(host);
    if (!p) {
      p = this.load(host);
      this.byHost.set(host, p);
    }
    return p;
  }

  /** Already loaded material, for the synchronous SNI path. */
  private loaded = new Map<string, HostTls>();

  peek(host: string): HostTls | undefined {
    return this.loaded.get(host);
  }

  private async load(host: string): Promise<HostTls> {
    const { certPath, keyPath } = await ensureCertificate(this.config, host);
    const cert = await Deno.readTextFile(certPath);
    const key = await Deno.readTextFile(keyPath);
    const context = createSecureContext({ cert, key });
    const endPoint = await tlsServerEndPoint(pemToDer(cert));
    const tls = { context, endPoint, certPem: cert, keyPem: key };
    this.loaded.set(host, tls);
    return tls;
  }
}
