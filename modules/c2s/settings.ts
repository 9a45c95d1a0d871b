/**
 * The c2s options, read together (at load and again when the configuration
 * is reloaded), with Prosody's names.
 *
 * @example
 * ```ts
 * const settings = readSettings(module);
 * new Connection(socket, false, settings.connection);
 * ```
 * @module
 */
import type { Module } from "../../core/moduleapi.ts";
import type { ConnectionOptions } from "../../core/net/connection.ts";
import { openFileLimit } from "../../core/net/listener.ts";

/** Descriptors kept free for storage, logs and the runtime itself. */
export const FD_RESERVE = 100;

export interface C2sSettings {
  /** Stanza size limits before and after authentication. */
  unauthedLimit: number;
  authedLimit: number;
  /** Seconds a stream may take to authenticate and bind. */
  timeoutSec: number;
  perIpLimit: number;
  maxConnections: number;
  /** What each new connection is made with (output cap, rate limit, timeouts). */
  connection: ConnectionOptions & { closeTimeoutMs: number };
  /** Accounts the rate limit does not apply to. */
  unlimited: Set<string>;
  interfaces: string[];
  ports: number[];
  directTlsPorts: number[];
}

/** "100kb/s" → bytes per second (decimal units, as Prosody's mod_limits). */
export function parseRate(rate: unknown): number | undefined {
  if (typeof rate === "number") return rate;
  if (typeof rate !== "string") return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmg])[a-z]*\/s\s*$/i.exec(rate);
  if (!m) return undefined;
  return Number(m[1]) * 10 ** { b: 0, k: 3, m: 6, g: 9 }[m[2].toLowerCase() as "b"];
}

/** "2s" or 2 → seconds. */
function parseBurst(burst: unknown): number | undefined {
  if (typeof burst === "number") return burst;
  const m = typeof burst === "string" ? /^\s*(\d+(?:\.\d+)?)\s*s?\s*$/.exec(burst) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * `limits = { c2s = { rate, burst }, s2sin = { … } }` for one kind of stream
 * (`false` turns them off), with its default rate; bursts default to 2 s.
 */
export function readRate(module: Module, kind = "c2s", defaultRate = 100_000) {
  const limits = module.getOption<
    Record<string, { rate?: unknown; burst?: unknown } | false> | false
  >("limits", {});
  if (limits === false || limits[kind] === false) return undefined;
  const c = limits[kind] ?? {};
  const bytesPerSecond = c.rate === undefined ? defaultRate : parseRate(c.rate);
  const burstSeconds = c.burst === undefined ? 2 : parseBurst(c.burst);
  if (bytesPerSecond === undefined || burstSeconds === undefined) {
    throw new Error(
      `config option "limits" (${kind}): expected { rate: "100kb/s", burst: "2s" }, got ${
        JSON.stringify(c)
      }`,
    );
  }
  return { bytesPerSecond, burstSeconds };
}

export function readSettings(module: Module): C2sSettings {
  const authedLimit = module.getOptionInteger("c2s_stanza_size_limit", 256 * 1024, {
    min: 10_000,
  });
  const fdLimit = openFileLimit();
  const fdCap = fdLimit === undefined ? Infinity : Math.max(16, fdLimit - FD_RESERVE);
  let maxConnections = module.getOptionInteger("c2s_max_connections", fdCap, { min: 1 });
  if (maxConnections > fdCap) {
    module.log.warn(
      "c2s_max_connections {wanted} lowered to {cap}: the open-file limit is {limit}",
      { wanted: maxConnections, cap: fdCap, limit: fdLimit },
    );
    maxConnections = fdCap;
  }
  return {
    authedLimit,
    unauthedLimit: Math.min(
      authedLimit,
      module.getOptionInteger("c2s_unauthed_stanza_size_limit", 10_000, { min: 1000 }),
    ),
    timeoutSec: module.getOptionPeriod("c2s_timeout", 300),
    perIpLimit: module.getOptionInteger("c2s_max_unauthed_per_ip", 32, { min: 1 }),
    maxConnections,
    connection: {
      maxSendBuffer: module.getOptionInteger("max_send_buffer_size", 1 << 20, { min: 16384 }),
      sendTimeoutMs: module.getOptionPeriod("send_timeout", 180) * 1000,
      closeTimeoutMs: module.getOptionPeriod("c2s_close_timeout", 5) * 1000,
      rate: readRate(module),
    },
    // Prosody's code reads unlimited_jids, its documentation says unlimited_users: both work.
    unlimited: new Set([
      ...module.getOptionInheritedSet("unlimited_jids"),
      ...module.getOptionInheritedSet("unlimited_users"),
    ]),
    interfaces: module.getOptionArray<string>(
      "c2s_interfaces",
      module.getOptionArray<string>("interfaces", ["*"]),
    ),
    ports: module.getOptionArray<number>("c2s_ports", [5222]),
    directTlsPorts: module.getOptionArray<number>("c2s_direct_tls_ports", [5223]),
  };
}
