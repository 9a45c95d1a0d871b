/**
 * The HTTP server every HTTP module shares (Prosody's net.http.server with
 * mod_http): one set of listeners (`Deno.serve`), and a table of routes that
 * modules add and remove. A route is a method and a path under a module's
 * base path (`/xmpp-websocket`, `/http-bind`, …); the longest base path
 * that matches wins. `"GET /*"` serves every path below the base (as
 * Prosody's wildcard routes); the handler finds it in `info.path`.
 *
 * Each request gets:
 * - its client's address: the socket's, or — when the socket's is one of
 *   `trusted_proxies` — the last untrusted one of `X-Forwarded-For`, and
 *   whether it came over HTTPS (`X-Forwarded-Proto` from a trusted proxy);
 * - a `413` when it announces a body larger than the limit, `404` or `405`
 *   when nothing serves it, `500` (logged) when its handler throws;
 * - CORS headers and preflight answers when its route asks for them.
 *
 * @example
 * ```ts
 * const http = new HttpServer({ log, trustedProxies: ["127.0.0.1"], maxBody: 10 << 20 });
 * http.add({ base: "/hello", routes: { "GET /": () => new Response("hi") } });
 * await http.listen({ port: 5280, hostname: "127.0.0.1" });
 * ```
 * @module
 */
import type { Logger } from "../log.ts";
import { ConnectionGuard, type GuardOptions } from "./guard.ts";
import { plainAddress } from "../net/connection.ts";

/** What a handler is told of its request besides the Request itself. */
export interface RequestInfo {
  /** The client's address (after trusted proxies). */
  ip: string;
  /** Whether the client used HTTPS (to us, or to a trusted proxy in front). */
  secure: boolean;
  /** The path below the route's base: "/" for the base itself. */
  path: string;
  /** The URL clients use to reach the server (`http_external_url`, else from the request). */
  baseUrl: string;
}

export type HttpHandler = (request: Request, info: RequestInfo) => Response | Promise<Response>;

/** Prosody's CORS settings for a route (a module's `cors` in `provides("http")`). */
export interface CorsOptions {
  enabled: boolean;
  credentials?: boolean;
  /** Origins allowed; "*" (the default) for any. */
  origins?: string[];
  headers?: string[];
  methods?: string[];
  maxAge?: number;
}

/** Routes under one base path: keys are "METHOD /sub/path", "/sub/path" (any method). */
export interface HttpRouteSet {
  base: string;
  routes: Record<string, HttpHandler>;
  cors?: CorsOptions;
  /** Largest body this route set accepts (default: the server's). */
  maxBody?: number;
  /** For logs: which module serves it. */
  owner?: string;
}

export interface HttpServerOptions {
  log: Logger;
  /** Addresses whose X-Forwarded-* headers are believed. */
  trustedProxies: string[];
  /** Largest request body announced by Content-Length, in bytes. */
  maxBody: number;
  /** `http_external_url`: how clients reach this server from outside. */
  externalUrl?: string;
  /** Connection limits and timeouts (`guard.ts`); without it, Deno.serve listens itself. */
  guard?: GuardOptions;
}

export class HttpServer {
  private sets: HttpRouteSet[] = [];
  private servers: Deno.HttpServer[] = [];
  private guard: ConnectionGuard | undefined;

  constructor(private opts: HttpServerOptions) {
    if (opts.guard) this.guard = new ConnectionGuard(opts.guard);
  }

  /** Adds a set of routes; throws if its base path is served already. */
  add(set: HttpRouteSet): void {
    const base = normaliseBase(set.base);
    if (this.sets.some((s) => s.base === base)) {
      throw new Error(`HTTP path ${base} is served already`);
    }
    this.sets.push({ ...set, base });
    // Longest first: /a/b before /a.
    this.sets.sort((a, b) => b.base.length - a.base.length);
  }

  /** Removes the routes under a base path. */
  remove(base: string): void {
    const b = normaliseBase(base);
    this.sets = this.sets.filter((s) => s.base !== b);
  }

  /** The base paths served now. */
  bases(): string[] {
    return this.sets.map((s) => s.base);
  }

  /**
   * Opens a listener (plain, or TLS with `cert`/`key`); with a guard, the
   * guard's public listener in front of a Deno.serve on a loopback port.
   */
  async listen(
    where: {
      port: number;
      hostname?: string;
      cert?: string;
      key?: string;
      /** More certificates by host name, chosen by the name the client asks for (SNI). */
      certs?: Record<string, { cert: string; key: string }>;
    },
  ): Promise<Deno.NetAddr> {
    if (!this.guard) return await this.serve(where);
    const local = (cert?: string, key?: string) =>
      this.serve({ port: 0, hostname: "127.0.0.1", cert, key });
    const fallback = await local(where.cert, where.key);
    let backend: Deno.NetAddr | ((name?: string) => Deno.NetAddr) = fallback;
    if (where.cert) {
      // One TLS endpoint per certificate; the guard reads the name from the ClientHello.
      const byName = new Map<string, Deno.NetAddr>();
      const byCert = new Map<string, Deno.NetAddr>([[where.cert, fallback]]);
      for (const [name, c] of Object.entries(where.certs ?? {})) {
        let addr = byCert.get(c.cert);
        if (!addr) byCert.set(c.cert, addr = await local(c.cert, c.key));
        byName.set(name.toLowerCase(), addr);
      }
      backend = (name?: string) => (name && byName.get(name)) || fallback;
    }
    try {
      return this.guard.listen(
        { hostname: where.hostname ?? "0.0.0.0", port: where.port },
        backend,
        !where.cert,
      );
    } catch (e) {
      throw new Error(
        `cannot listen for HTTP${where.cert ? "S" : ""} on ${
          where.hostname ?? "*"
        }:${where.port}: ${(e as Error).message}`,
      );
    }
  }

  private serve(
    where: { port: number; hostname?: string; cert?: string; key?: string },
  ): Promise<Deno.NetAddr> {
    return new Promise((resolve, reject) => {
      try {
        const server = Deno.serve({
          port: where.port,
          hostname: where.hostname,
          ...(where.cert ? { cert: where.cert, key: where.key } : {}),
          onListen: (addr) => resolve(addr as Deno.NetAddr),
          onError: (e) => {
            this.opts.log.error("HTTP handler failed: {error}", { error: e });
            return new Response("Internal Server Error", { status: 500 });
          },
        }, (request, info) => this.handle(request, info, !!where.cert));
        this.servers.push(server);
      } catch (e) {
        reject(
          new Error(
            `cannot listen for HTTP${where.cert ? "S" : ""} on ${
              where.hostname ?? "*"
            }:${where.port}: ${(e as Error).message}`,
          ),
        );
      }
    });
  }

  /** Closes every listener (requests in progress are cut short). */
  async close(): Promise<void> {
    this.guard?.close();
    const servers = this.servers.splice(0);
    await Promise.all(servers.map((s) => s.shutdown().catch(() => {})));
  }

  /** Serves one request: the route, its limits and CORS, a 500 if its handler throws. */
  async handle(
    request: Request,
    conn: Deno.ServeHandlerInfo,
    tls: boolean,
  ): Promise<Response> {
    const url = new URL(request.url);
    let peer = (conn.remoteAddr as Deno.NetAddr).hostname;
    if (this.guard) {
      // Every request comes through the guard, which knows whose it is.
      const client = this.guard.clientOf((conn.remoteAddr as Deno.NetAddr).port);
      if (client === undefined) return text(403, "Forbidden");
      peer = client;
    }
    const { ip, secure } = this.client(request, peer, tls);
    const set = this.sets.find((s) =>
      url.pathname === s.base || url.pathname.startsWith(s.base + "/") || s.base === "/"
    );
    const started = Date.now();
    let response: Response;
    try {
      response = await this.dispatch(request, url, set, { ip, secure });
    } catch (e) {
      if (e instanceof BodyTooLarge) return text(413, "Payload Too Large");
      this.opts.log.error("HTTP {method} {path} failed: {error}", {
        method: request.method,
        path: url.pathname,
        error: e,
      });
      response = new Response("Internal Server Error", { status: 500 });
    }
    this.opts.log.debug("HTTP {ip} {method} {path} {status} {ms} ms", {
      ip,
      method: request.method,
      path: url.pathname,
      status: response.status,
      ms: Date.now() - started,
    });
    return response;
  }

  private async dispatch(
    request: Request,
    url: URL,
    set: HttpRouteSet | undefined,
    client: { ip: string; secure: boolean },
  ): Promise<Response> {
    if (!set) return text(404, "Not Found");
    const path = set.base === "/" ? url.pathname : url.pathname.slice(set.base.length) || "/";
    const cors = set.cors?.enabled ? corsHeaders(set.cors, request) : undefined;
    if (request.method === "OPTIONS" && cors) {
      return new Response(null, { status: 204, headers: cors });
    }
    const length = Number(request.headers.get("content-length") ?? "0");
    if (!Number.isFinite(length) || length < 0) return text(400, "Bad Content-Length");
    const maxBody = set.maxBody ?? this.opts.maxBody;
    if (length > maxBody) return text(413, "Payload Too Large");
    if (request.body && !request.headers.has("content-length")) {
      // Sent in chunks, its length unknown: it is counted as the handler reads it.
      request = new Request(request, {
        body: request.body.pipeThrough(limitTo(maxBody)),
        duplex: "half",
      } as RequestInit);
    }
    const handler = route(set.routes, request.method, path) ??
      (request.method === "HEAD" ? route(set.routes, "GET", path) : undefined);
    if (!handler) {
      const allowed = Object.keys(set.routes).some((k) =>
        k.endsWith(` ${path}`) || (k.endsWith(" /*") && path !== "/")
      );
      return text(allowed ? 405 : 404, allowed ? "Method Not Allowed" : "Not Found");
    }
    const baseUrl = this.opts.externalUrl?.replace(/\/$/, "") ??
      `${client.secure ? "https" : "http"}://${url.host}`;
    const response = await handler(request, { ...client, path, baseUrl });
    if (cors && response.status !== 101) {
      for (const [k, v] of Object.entries(cors)) response.headers.set(k, v);
    }
    return response;
  }

  /** The client's address and scheme, through trusted proxies. */
  private client(request: Request, peer: string, tls: boolean): { ip: string; secure: boolean } {
    const trusted = this.opts.trustedProxies;
    let ip = plainAddress(peer);
    if (!trusted.includes(ip)) return { ip, secure: tls };
    let secure = tls;
    const proto = request.headers.get("x-forwarded-proto");
    if (proto) secure = proto.split(",")[0].trim().toLowerCase() === "https";
    const forwarded = request.headers.get("x-forwarded-for");
    if (forwarded) {
      // The last address a trusted proxy did not add is the client's.
      const hops = forwarded.split(",").map((h) => plainAddress(h.trim())).filter((h) => h !== "");
      for (let i = hops.length - 1; i >= 0; i--) {
        ip = hops[i];
        if (!trusted.includes(ip)) break;
      }
    }
    return { ip, secure };
  }
}

/** The handler for a method and path: exact ("GET /x", "/x"), else Prosody's wildcard ("GET /*"). */
function route(
  routes: Record<string, HttpHandler>,
  method: string,
  path: string,
): HttpHandler | undefined {
  const exact = routes[`${method} ${path}`] ?? routes[path];
  if (exact || path === "/") return exact;
  return routes[`${method} /*`] ?? routes["/*"];
}

/** "/a/b" whatever slashes it was written with ("a/b/", "//a/b"). */
function normaliseBase(base: string): string {
  return "/" + base.replace(/^\/+|\/+$/g, "");
}

function text(status: number, body: string): Response {
  return new Response(body + "\n", { status, headers: { "content-type": "text/plain" } });
}

function corsHeaders(cors: CorsOptions, request: Request): Record<string, string> {
  const origin = request.headers.get("origin");
  const origins = cors.origins ?? ["*"];
  const allow = origins.includes("*")
    ? (cors.credentials && origin ? origin : "*")
    : origin && origins.includes(origin)
    ? origin
    : "";
  const h: Record<string, string> = {
    "access-control-allow-methods": (cors.methods ?? ["GET", "POST", "OPTIONS"]).join(", "),
    "access-control-allow-headers": (cors.headers ?? ["Content-Type"]).join(", "),
    "access-control-max-age": String(cors.maxAge ?? 7200),
  };
  if (allow) h["access-control-allow-origin"] = allow;
  if (cors.credentials) h["access-control-allow-credentials"] = "true";
  if (allow !== "*") h["vary"] = "Origin";
  return h;
}

/** Passes a body through, failing with `BodyTooLarge` past `max` bytes. */
function limitTo(max: number): TransformStream<Uint8Array, Uint8Array> {
  let size = 0;
  return new TransformStream({
    transform(chunk, ctl) {
      size += chunk.byteLength;
      if (size > max) ctl.error(new BodyTooLarge(max));
      else ctl.enqueue(chunk);
    },
  });
}

/** A request body larger than its route accepts (the handler answers 413). */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

/**
 * Reads a request's body as text, at most `max` bytes: a body sent in
 * chunks announces no length, so the limit is counted while reading.
 *
 * @example
 * ```ts
 * try {
 *   const text = await readText(request, 64 * 1024);
 * } catch (e) {
 *   if (e instanceof BodyTooLarge) return new Response("Too large", { status: 413 });
 *   throw e;
 * }
 * ```
 */
export async function readText(request: Request, max: number): Promise<string> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLarge(max);
    }
    parts.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.byteLength;
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(all); // throws on bad UTF-8
}
