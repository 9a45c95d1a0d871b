/**
 * Message routing measured from outside: opens P pairs of bound sessions
 * (initial presence sent), runs the windowed exchange of message_flow.ts
 * on them, and reads the server's CPU around it. Shared by the `route` and
 * `route-churn` scenarios.
 * @module
 */
import type { BenchConnection } from "./connection.ts";
import { type FlowResult, type Pair, runFlow } from "./message_flow.ts";
import { OPEN_MODE, PHASE_LIMIT_MS, target } from "./open_logins.ts";
import { runPool } from "./pool.ts";
import { cpuMs } from "./proc.ts";
import type { RunningServer } from "./servers.ts";
import { percentile } from "./stats.ts";
import { closeSession, openSession } from "./xmpp_steps.ts";

/** The figures of one measured exchange. */
export interface RouteMeasure {
  pairs: number;
  perPair: number;
  window: number;
  sent: number;
  delivered: number;
  bounced: number;
  lost: number;
  errors: string[];
  elapsedMs: number;
  messagesPerSecond: number;
  serverCpuMs: number;
  /** Server CPU per delivered message, µs: the figure to compare. */
  cpuUsPerMessage: number;
  /** The load generator's own CPU over the exchange (this process). */
  generatorCpuMs: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Mean one-way latency: by Little's law ≈ messages in flight ÷ rate when loaded. */
  latencyMeanMs: number;
}

/** Time given to the server after the last delivery before the final CPU sample. */
const SETTLE_MS = 250;
const LIMITS = { totalMs: 5 * 60_000, stallMs: 15_000 };

/**
 * Opens `count` pairs: 2·count sessions `route-s<i>` and `route-r<i>`, with
 * `concurrency` logins at a time. Throws (closing what opened) unless all open.
 */
export async function openPairs(port: number, count: number, concurrency: number) {
  const conns: BenchConnection[] = new Array(2 * count);
  const opened = await runPool(2 * count, concurrency, PHASE_LIMIT_MS, async (i) => {
    const name = i < count ? `route-s${i}` : `route-r${i - count}`;
    const account = { username: name, password: "any" };
    conns[i] = await openSession(target(port, i), account, "route", OPEN_MODE);
  });
  if (opened.failed > 0) {
    await closeAll(conns.filter((c) => c));
    throw new Error(
      `${opened.failed} of ${2 * count} sessions failed to open: ${opened.errors[0]}`,
    );
  }
  const pairs: Pair[] = [];
  for (let i = 0; i < count; i++) pairs.push({ sender: conns[i], receiver: conns[count + i] });
  return pairs;
}

/** Closes every session of `pairs` cleanly; returns how many did not close cleanly. */
export function closePairs(pairs: Pair[]): Promise<number> {
  return closeAll(pairs.flatMap((p) => [p.sender, p.receiver]));
}

/** Closes sessions cleanly, 50 at a time; returns how many did not close cleanly. */
export async function closeAll(conns: BenchConnection[]): Promise<number> {
  const closed = await runPool(
    conns.length,
    50,
    PHASE_LIMIT_MS,
    (i) => closeSession(conns[i], OPEN_MODE.stepTimeoutMs),
  );
  return closed.failed;
}

/** An unmeasured exchange, so that the measured one runs on warm code. */
export async function warmRoute(pairs: Pair[], perPair: number, window: number): Promise<void> {
  const r = await runFlow(pairs, perPair, window, LIMITS);
  if (r.delivered === 0) {
    throw new Error(`no message delivered in the warm-up: ${r.errors.join(" | ")}`);
  }
}

/** One measured exchange on `server`. */
export async function measureRoute(
  server: RunningServer,
  pairs: Pair[],
  perPair: number,
  window: number,
): Promise<RouteMeasure> {
  const cpuBefore = await server.cpuMs();
  const ownBefore = await cpuMs(Deno.pid);
  const r: FlowResult = await runFlow(pairs, perPair, window, LIMITS);
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const serverCpuMs = (await server.cpuMs()) - cpuBefore;
  const generatorCpuMs = (await cpuMs(Deno.pid)) - ownBefore;
  return {
    pairs: pairs.length,
    perPair,
    window,
    sent: r.sent,
    delivered: r.delivered,
    bounced: r.bounced,
    lost: r.lost,
    errors: r.errors,
    elapsedMs: r.elapsedMs,
    messagesPerSecond: r.delivered / (r.elapsedMs / 1000),
    serverCpuMs,
    cpuUsPerMessage: r.delivered > 0 ? serverCpuMs * 1000 / r.delivered : NaN,
    generatorCpuMs,
    latencyP50Ms: percentile(r.latenciesMs, 50),
    latencyP99Ms: percentile(r.latenciesMs, 99),
    latencyMeanMs: r.latenciesMs.reduce((sum, ms) => sum + ms, 0) / r.latenciesMs.length,
  };
}

/** One log line for a measured exchange. */
export function describeRoute(m: RouteMeasure): string {
  return `${m.delivered}/${m.sent} delivered (${m.bounced} bounced, ${m.lost} lost) in ` +
    `${(m.elapsedMs / 1000).toFixed(2)} s = ${m.messagesPerSecond.toFixed(0)} msg/s, ` +
    `server CPU ${(m.serverCpuMs / 1000).toFixed(2)} s = ${m.cpuUsPerMessage.toFixed(1)} µs/msg ` +
    `(generator ${(m.generatorCpuMs / 1000).toFixed(2)} s), one-way latency p50 ` +
    `${m.latencyP50Ms.toFixed(2)} ms, p99 ${m.latencyP99Ms.toFixed(2)} ms, ` +
    `mean ${m.latencyMeanMs.toFixed(2)} ms`;
}
