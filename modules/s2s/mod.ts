/**
 * Server-to-server streams (RFC 6120), as Prosody's mod_s2s with
 * mod_dialback and its certificate checks: federation with other servers.
 * Not on by default yet (`modules_enabled: [..., "s2s"]`).
 *
 * - `outgoing.ts`: routes to other servers (SRV lookup, STARTTLS or direct
 *   TLS, SASL EXTERNAL or dialback, queue and bounces, idle close).
 * - `incoming.ts`: streams from other servers (`s2s_ports`, default 5269;
 *   `s2s_direct_tls_ports`, none by default), authenticated per domain pair.
 * - `context.ts`: what both share, with the certificate policy:
 *   `s2s_secure_auth` (default false: a peer without a valid certificate is
 *   authenticated by dialback), `s2s_secure_domains` (need one anyway),
 *   `s2s_insecure_domains` (dialback is enough even with secure auth), the
 *   trusted roots in `s2s_cafile` (default: the system's bundle).
 *
 * Options: `s2s_ports`, `s2s_direct_tls_ports`, `s2s_interfaces`,
 * `s2s_require_encryption` (default true), `s2s_timeout` (idle routes,
 * 300 s), `s2s_connect_timeout` (connecting and authenticating, 90 s),
 * `s2s_dns_server` ("address:port" to ask instead of the
 * system's), `limits.s2sin` (read rate per incoming stream, 1 MB/s).
 * @module
 */
import { randomUUID } from "node:crypto";
import type { Module } from "../../core/moduleapi.ts";
import type { Origin } from "../../core/router.ts";
import type { Connection } from "../../core/net/connection.ts";
import { Listener } from "../../core/net/listener.ts";
import type { Stanza } from "../../core/xml/stanza.ts";
import { hostOf, prep } from "../../core/jid.ts";
import { readRate } from "../c2s/settings.ts";
import { trustAnchors } from "./certs.ts";
import { S2sContext, type SecurePolicy, streamError } from "./context.ts";
import { acceptStream } from "./incoming.ts";
import { outgoingRoutes } from "./outgoing.ts";

export const meta = { scope: "global" };

export default function s2s(module: Module) {
  const log = module.log;
  const dnsOption = module.getOptionString("s2s_dns_server");
  const cafile = module.getOptionFile("s2s_cafile");
  const ctx = new S2sContext(
    module,
    randomUUID(),
    module.getOptionBoolean("s2s_require_encryption", true)!,
    trustAnchors(cafile),
    securePolicy(module),
    // (Prosody reads this one from s2s_timeout; here s2s_timeout closes idle routes.)
    module.getOptionPeriod("s2s_connect_timeout", 90) * 1000,
    // A peer that reads too slowly loses its stream, as a client does.
    {
      maxSendBuffer: module.getOptionInteger("max_send_buffer_size", 1 << 20, { min: 16384 }),
      sendTimeoutMs: module.getOptionPeriod("send_timeout", 180) * 1000,
    },
  );
  const idleSec = module.getOptionPeriod("s2s_timeout", 300);
  const routes = outgoingRoutes(ctx, {
    nameServer: dnsOption ? parseNameServer(dnsOption) : undefined,
    idleSec,
  });
  // Idle routes are looked for every minute (more often when they may idle less long).
  const sweepSec = Math.max(1, Math.min(60, Math.floor(idleSec / 2)));
  module.addTimer(sweepSec, () => {
    routes.sweep();
    return sweepSec;
  });

  // Streams other servers open to us. What one remote server may send: mod_limits' s2sin
  // (a whole server's traffic: 1 MB/s).
  const deps = {
    verify: routes.verify,
    streams: new Map<Connection, Map<string, string>>(),
    rate: readRate(module, "s2sin", 1_000_000),
  };
  const listeners: Listener[] = [];
  const listen = async (interfaces: string[], ports: number[], directTls: boolean) => {
    for (const iface of interfaces) {
      for (const port of ports) {
        const l = new Listener(
          { host: iface === "*" ? undefined : iface, port, log },
          (socket) => acceptStream(ctx, socket, deps, directTls),
        );
        await l.start();
        listeners.push(l);
        log.info("s2s listening on {where}{tls}", {
          where: l.address(),
          tls: directTls ? " (direct TLS)" : "",
        });
      }
    }
  };
  /** Where to listen, as the configuration says now. */
  const wanted = () => ({
    interfaces: module.getOption<string[]>(
      "s2s_interfaces",
      module.getOption<string[]>("interfaces", ["*"]),
    ),
    ports: module.getOption<number[]>("s2s_ports", [5269]),
    directTls: module.getOptionArray<number>("s2s_direct_tls_ports", []),
  });
  // Listeners open with the server (not when a command-line tool loads the modules).
  module.followListeners(wanted, () => {
    for (const l of listeners.splice(0)) l.close();
  }, async (w) => {
    // (the certificates of direct TLS: the first host's, or the one the peer names)
    if (w.directTls.length > 0) {
      for (const host of module.localHosts()) await module.loadTls(host);
    }
    await listen(w.interfaces, w.ports, false);
    await listen(w.interfaces, w.directTls, true);
  });

  module.reportConnections("s2sin", () => deps.streams.size);
  module.reportConnections("s2sout", () => {
    let n = 0;
    for (const r of routes.list()) if (r.state !== "closed") n++;
    return n;
  });
  module.exports.sendRemote = routes.send;
  module.exports.policies = ctx.policies;
  /** The s2s connections now, as Prosody's `s2s:show()`: routes out, and pairs in with how each authenticated. */
  module.exports.connections = () => ({
    outgoing: routes.list(),
    incoming: [...deps.streams].map(([conn, pairs]) => ({
      secure: conn.secure,
      pairs: [...pairs].map(([pair, auth]) => {
        const [from, to] = pair.split("|");
        return { from, to, auth };
      }),
    })),
  });
  // Components load only their own module: their stanzas for other servers go through s2s too.
  const forComponent = (host: string) => {
    if (module.hostType(host) !== "component") return;
    // Its certificate, for STARTTLS on streams to it (made self-signed when none is configured).
    module.loadTls(host).catch((e) =>
      log.warn("no TLS for component {host}: {error}", { host, error: e })
    );
    module.hookHost(host, "route/remote", (e: RemoteEvent) => routeRemote(routes.send, e));
  };
  for (const host of module.components()) forComponent(host); // (those already there)
  module.hookGlobal("host-activated", (host: string) => forComponent(host));
  const stop = (condition: string) => {
    for (const l of listeners.splice(0)) l.close();
    routes.closeAll();
    // Streams from other servers end too (they reconnect to wherever we are next).
    for (const conn of deps.streams.keys()) {
      conn.write(streamError(condition));
      conn.close();
    }
  };
  // After c2s (-100) has told remote contacts its users went offline, over the routes still open.
  module.hookGlobal("server-stopping", () => stop("system-shutdown"), -200);
  stopActive = () => stop("reset");
}

/** How the loaded instance stops, for `unload()`. */
let stopActive: (() => void) | undefined;

/** The module goes (a reload turned it off): its ports and streams close. */
export function unload() {
  stopActive?.();
  stopActive = undefined;
}

/** Each host sends what is for other domains through s2s, under its own certificate policy. */
export function addHost(hostModule: Module) {
  const sendRemote = hostModule.exports.sendRemote as (
    local: string,
    remote: string,
    stanza: Stanza,
  ) => boolean;
  const policies = hostModule.exports.policies as Map<string, SecurePolicy>;
  policies.set(hostModule.host, securePolicy(hostModule));
  // Presence and the like go to remote contacts too now (modules ask for "federation").
  hostModule.addItem("federation", { module: "s2s" });
  hostModule.hook("route/remote", (e: RemoteEvent) => routeRemote(sendRemote, e));
}

/** Prosody's options: which remote domains must show a valid certificate. */
function securePolicy(module: Module): SecurePolicy {
  return {
    secureAuth: module.getOptionBoolean("s2s_secure_auth", false)!,
    secureDomains: new Set(module.getOptionArray<string>("s2s_secure_domains")),
    insecureDomains: new Set(module.getOptionArray<string>("s2s_insecure_domains")),
  };
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
  // (no error for presence, nor for errors and results: as when a route fails)
  const type = stanza.attrs.type;
  if (type !== "error" && type !== "result" && stanza.name !== "presence") {
    origin.send(stanza.errorReply("wait", "resource-constraint", "Cannot send to that server now"));
  }
  return true;
}

/** "1.2.3.4", "1.2.3.4:53", "::1" or "[::1]:53". */
function parseNameServer(s: string): { ipAddr: string; port: number } {
  const m = s.match(/^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/) ?? s.match(/^([0-9.]+)(?::(\d+))?$/) ??
    s.match(/^([0-9a-fA-F:]+)()$/);
  if (!m) throw new Error(`option s2s_dns_server: expected "address" or "address:port", got ${s}`);
  return { ipAddr: m[1], port: m[2] ? Number(m[2]) : 53 };
}
