/**
 * The server's metrics over HTTP in OpenMetrics text (Prosody's
 * mod_http_openmetrics), at `/metrics` on the HTTP server, for Prometheus
 * and the like. Each request fires `stats-update` (modules set their
 * gauges) and renders every metric.
 *
 * Only addresses in `openmetrics_allow_ips` (default `["127.0.0.1", "::1"]`)
 * or in the network `openmetrics_allow_cidr` (e.g. `"10.0.0.0/8"`) may read
 * them; others get 403. Behind a reverse proxy listed in `trusted_proxies`
 * the client's address is the one it forwards.
 *
 * @example
 * ```ts
 * // config: modules_enabled: [..., "http_openmetrics"], openmetrics_allow_cidr: "10.0.0.0/8"
 * const text = await (await fetch("http://127.0.0.1:5280/metrics")).text();
 * ```
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { HttpProvider } from "./http.ts";

export const meta = { scope: "global" };

const CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";

export default async function httpOpenmetrics(module: Module) {
  await module.depends("http");
  const allowIps = module.getOptionSet<string>("openmetrics_allow_ips", ["127.0.0.1", "::1"]);
  const cidrOption = module.getOptionString("openmetrics_allow_cidr");
  const cidr = cidrOption === undefined ? undefined : parseCidr(cidrOption);
  if (cidrOption !== undefined && !cidr) {
    module.log.error("option openmetrics_allow_cidr: not a network: {cidr}", { cidr: cidrOption });
  }

  const provider: HttpProvider = {
    name: "metrics",
    default_path: "/metrics",
    route: {
      "GET /": async (_req, info) => {
        if (!allowIps.has(info.ip) && !(cidr && inCidr(info.ip, cidr))) {
          return new Response("Forbidden\n", {
            status: 403,
            headers: { "content-type": "text/plain" },
          });
        }
        return new Response(await module.collectMetrics(), {
          headers: { "content-type": CONTENT_TYPE },
        });
      },
    },
  };
  module.provides("http", provider);
}

/** A network: its address as a number, and how many leading bits count. */
export interface Cidr {
  v6: boolean;
  addr: bigint;
  bits: number;
}

/**
 * Parses `"10.0.0.0/8"` or `"fd00::/8"` (an address alone is a /32 or /128).
 *
 * @example
 * ```ts
 * inCidr("10.1.2.3", parseCidr("10.0.0.0/8")!); // true
 * ```
 */
export function parseCidr(text: string): Cidr | undefined {
  const [ip, len, extra] = text.trim().split("/");
  if (extra !== undefined) return undefined;
  const parsed = parseIp(ip);
  if (!parsed) return undefined;
  const max = parsed.v6 ? 128 : 32;
  const bits = len === undefined ? max : Number(len);
  if (!/^\d*$/.test(len ?? "") || !Number.isInteger(bits) || bits < 0 || bits > max) {
    return undefined;
  }
  return { ...parsed, bits };
}

/** Whether an address is in a network (IPv4 only in IPv4 networks, IPv6 in IPv6 ones). */
export function inCidr(ip: string, cidr: Cidr): boolean {
  const parsed = parseIp(ip);
  if (!parsed || parsed.v6 !== cidr.v6) return false;
  const shift = BigInt((cidr.v6 ? 128 : 32) - cidr.bits);
  return (parsed.addr >> shift) === (cidr.addr >> shift);
}

function parseIp(ip: string): { v6: boolean; addr: bigint } | undefined {
  if (ip.includes(":")) {
    const zone = ip.indexOf("%");
    const s = zone === -1 ? ip : ip.slice(0, zone);
    const halves = s.split("::");
    if (halves.length > 2) return undefined;
    const part = (h: string) => h === "" ? [] : h.split(":");
    const head = part(halves[0]);
    const tail = halves.length === 2 ? part(halves[1]) : [];
    // An embedded IPv4 address (::ffff:1.2.3.4) is two groups.
    const last = tail.length ? tail : head;
    if (last.length && last[last.length - 1].includes(".")) {
      const v4 = parseIp(last.pop()!);
      if (!v4 || v4.v6) return undefined;
      last.push((v4.addr >> 16n).toString(16), (v4.addr & 0xffffn).toString(16));
    }
    const missing = 8 - head.length - tail.length;
    if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
    const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
    let addr = 0n;
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      addr = (addr << 16n) | BigInt(parseInt(g, 16));
    }
    return { v6: true, addr };
  }
  const octets = ip.split(".");
  if (octets.length !== 4) return undefined;
  let addr = 0n;
  for (const o of octets) {
    if (!/^\d{1,3}$/.test(o) || Number(o) > 255) return undefined;
    addr = (addr << 8n) | BigInt(o);
  }
  return { v6: false, addr };
}
