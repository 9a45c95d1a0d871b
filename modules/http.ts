/**
 * HTTP (Prosody's mod_http): the server's HTTP and HTTPS listeners, shared
 * by every module that serves something over HTTP (WebSocket, BOSH, file
 * sharing, …). Loaded by the modules that need it (`module.depends("http")`).
 *
 * A module serves HTTP the way Prosody's do:
 *
 * ```ts
 * await module.depends("http");
 * module.provides("http", {
 *   default_path: "/xmpp-websocket",
 *   cors: { enabled: true },
 *   route: { "GET /": (request, info) => new Response("hello") },
 * });
 * ```
 *
 * It is served at `http_paths[name]`, else its `default_path`, else
 * `/<module name>`; its routes are removed when the module unloads.
 *
 * Options (Prosody's names): `http_ports` (5280), `https_ports` (5281, with
 * each host's certificate chosen by SNI, else the first host's), `http_interfaces` (all), `https_interfaces`
 * (as http_interfaces), `http_external_url` (behind a reverse proxy),
 * `trusted_proxies` (127.0.0.1, ::1: their X-Forwarded-For/-Proto are
 * believed), `http_max_content_size` (10 MiB), `http_paths`. Cadence's
 * own, against clients that hold connections (see `core/http/guard.ts`):
 * `http_max_connections_per_ip` (64; trusted proxies are not counted),
 * `http_max_connections` (10,000), `http_header_timeout` (30 s to send a
 * request head), `http_idle_timeout` (300 s without a byte either way).
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import { type CorsOptions, type HttpHandler, HttpServer } from "../core/http/server.ts";

export const meta = { scope: "global" };

/** What `module.provides("http", …)` takes. */
export type HttpProvider = {
  /** The name `http_paths` knows it by (default: the module's). */
  name?: string;
  default_path?: string;
  /** "METHOD /path" (or "/path", any method) → handler; paths below the base. */
  route: Record<string, HttpHandler>;
  cors?: CorsOptions;
  /** Largest request body, when not the server's. */
  max_content_size?: number;
};

export default function http(module: Module) {
  const log = module.log;
  const server = new HttpServer({
    log,
    trustedProxies: module.getOptionArray<string>("trusted_proxies", ["127.0.0.1", "::1"]),
    maxBody: module.getOptionInteger("http_max_content_size", 10 << 20, { min: 1024 }),
    externalUrl: module.getOptionString("http_external_url"),
    guard: {
      maxPerIp: module.getOptionInteger("http_max_connections_per_ip", 64, { min: 1 }),
      maxTotal: module.getOptionInteger("http_max_connections", 10000, { min: 1 }),
      headerTimeout: module.getOptionPeriod("http_header_timeout", 30) * 1000,
      idleTimeout: module.getOptionPeriod("http_idle_timeout", 300) * 1000,
      exempt: module.getOptionArray<string>("trusted_proxies", ["127.0.0.1", "::1"]),
      log,
    },
  });
  const paths = module.getOption<Record<string, string>>("http_paths", {});
  /** Where each provider is served. */
  const mounted = new Map<HttpProvider, string>();

  function mount(item: HttpProvider, source: Module) {
    const name = item.name ?? source.name;
    const base = paths[name] ?? item.default_path ?? `/${name}`;
    try {
      server.add({
        base,
        routes: item.route,
        cors: item.cors,
        maxBody: item.max_content_size,
        owner: source.name,
      });
      mounted.set(item, base);
      log.debug("serving {name} at {base}", { name, base });
    } catch (e) {
      log.error("cannot serve {name} at {base}: {error}", { name, base, error: e });
    }
  }
  function unmount(item: HttpProvider) {
    const base = mounted.get(item);
    if (base === undefined) return;
    mounted.delete(item);
    server.remove(base);
  }
  /** Where a provider (by its name) is served, if it is. */
  module.exports.pathOf = (name: string): string | undefined => {
    for (const [item, base] of mounted) if ((item.name ?? "") === name) return base;
    return undefined;
  };
  module.exports.mount = mount;
  module.exports.unmount = unmount;
  module.exports.server = server;
  // Global modules' providers (per-host ones come through addHost).
  module.hookGlobal(
    "item-added/http-provider",
    (e: { item: HttpProvider; source: Module }) => mount(e.item, e.source),
  );
  module.hookGlobal("item-removed/http-provider", (e: { item: HttpProvider }) => unmount(e.item));

  /** Where to listen, as the configuration says now (a reload may move it). */
  const wanted = () => {
    const interfaces = module.getOption<string[]>(
      "http_interfaces",
      module.getOption<string[]>("interfaces", ["*"]),
    );
    return {
      interfaces,
      ports: module.getOptionArray<number>("http_ports", [5280]),
      tlsInterfaces: module.getOption<string[]>("https_interfaces", interfaces),
      tlsPorts: module.getOptionArray<number>("https_ports", [5281]),
    };
  };
  module.followListeners(wanted, () => server.close(), async (w) => {
    for (const iface of w.interfaces) {
      for (const port of w.ports) {
        const addr = await server.listen({ port, hostname: host(iface) });
        log.info("HTTP listening on {where}", { where: `${addr.hostname}:${addr.port}` });
      }
    }
    if (w.tlsPorts.length === 0) return;
    const first = module.localHosts()[0];
    const tls = await module.loadTls(first);
    // Every host's certificate, picked by the name the client asks for (SNI); else the first's.
    const certs: Record<string, { cert: string; key: string }> = {};
    for (const h of [...module.localHosts(), ...module.components()]) {
      try {
        const t = await module.loadTls(h);
        certs[h] = { cert: t.certPem, key: t.keyPem };
      } catch (e) {
        log.warn("HTTPS for {host}: no certificate ({error}); it gets {first}'s", {
          host: h,
          error: e,
          first,
        });
      }
    }
    for (const iface of w.tlsInterfaces) {
      for (const port of w.tlsPorts) {
        const addr = await server.listen({
          port,
          hostname: host(iface),
          cert: tls.certPem,
          key: tls.keyPem,
          certs,
        });
        log.info("HTTPS listening on {where} (each host's certificate by SNI; else {host}'s)", {
          where: `${addr.hostname}:${addr.port}`,
          host: first,
        });
      }
    }
  });
  module.hookGlobal("server-stopping", () => server.close(), -200);
  stopActive = () => server.close();
}

/** "*" is every IPv4 address (IPv6 ones are listed by address, e.g. "::1"). */
const host = (iface: string) => iface === "*" ? "0.0.0.0" : iface;

let stopActive: (() => Promise<void>) | undefined;

/** The module goes: its listeners close. */
export async function unload() {
  await stopActive?.();
  stopActive = undefined;
}

/** A host's modules' providers are served too. */
export function addHost(hostModule: Module) {
  const mount = hostModule.exports.mount as (item: HttpProvider, source: Module) => void;
  const unmount = hostModule.exports.unmount as (item: HttpProvider) => void;
  hostModule.handleItems<HttpProvider>("http-provider", mount, unmount);
}
