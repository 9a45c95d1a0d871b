/**
 * Routing after connection churn, on one server process: the loaded
 * routing measurement (P=100, W=20), then thousands of complete logins and
 * logouts, then the same measurement again on the same pairs. Per-message
 * cost must not creep up with the number of sessions a process has seen
 * (Prosody 0.12's per-connection timers outlive their connections, and its
 * cost per message climbs from 32 to 223 µs over ~7,000 logins).
 * @module
 */
import type { Pair } from "../message_flow.ts";
import { loginPoolAccounts, OPEN_SETUP, runLogins, warmUp } from "../open_logins.ts";
import { ANCHORS, details, mib, type Row, row } from "../report.ts";
import {
  closePairs,
  describeRoute,
  measureRoute,
  openPairs,
  type RouteMeasure,
  warmRoute,
} from "../route_measure.ts";
import type { AccountSetup, ServerUnderTest, Template } from "../servers.ts";
import { LOADED, routeSetup } from "./route.ts";

/** The figures of one run: before and after churn on the same process. */
export interface ChurnRun {
  before: RouteMeasure;
  after: RouteMeasure;
  churnLogins: number;
  churnFailed: number;
  churnErrors: string[];
  churnMs: number;
  churnCpuMsPerLogin: number;
  rssBeforeChurnKiB: number;
  rssAfterChurnKiB: number;
  closeFailed: number;
  exitCode: number;
  /** The end of what the server printed (warnings and errors only, at `log: "warn"`). */
  serverOutput: string;
}

/** Pause after the churn, so the server has finished closing its sessions. */
const AFTER_CHURN_MS = 1_000;

/** How the scenario was set up, for the report. */
export function churnSetup(churn: number): string {
  return `${OPEN_SETUP}; an unmeasured exchange, route ${LOADED.label}, then ${churn} ` +
    "logins/logouts (50 concurrent, the login scenario's steps) while the pairs stay online, " +
    "then route again";
}

/** The accounts: the route scenario's and the churning clients'. */
export function churnAccountSetup(concurrency: number): AccountSetup {
  const route = routeSetup(LOADED.pairs, concurrency);
  return { accounts: [...route.accounts, ...loginPoolAccounts("churn", concurrency)] };
}

/** One run: route, churn, route, on one fresh server. */
export async function runRouteChurn(
  sut: ServerUnderTest,
  template: Template,
  messages: number,
  churn: number,
  concurrency: number,
): Promise<ChurnRun> {
  const server = await sut.start(template);
  let pairs: Pair[] = [];
  try {
    await warmUp(server.port, concurrency);
    pairs = await openPairs(server.port, LOADED.pairs, concurrency);
    // A full-size unmeasured exchange first, so that "before" runs on code as warm as "after".
    await warmRoute(pairs, messages, LOADED.window);
    const before = await measureRoute(server, pairs, messages, LOADED.window);
    const rssBeforeChurnKiB = await server.rssKiB();
    const cpuBefore = await server.cpuMs();
    const c = await runLogins(server.port, churn, concurrency, "churn");
    await new Promise((resolve) => setTimeout(resolve, AFTER_CHURN_MS));
    const churnCpuMs = (await server.cpuMs()) - cpuBefore;
    const rssAfterChurnKiB = await server.rssKiB();
    const after = await measureRoute(server, pairs, messages, LOADED.window);
    const closeFailed = await closePairs(pairs);
    return {
      before,
      after,
      churnLogins: c.completed,
      churnFailed: c.failed,
      churnErrors: c.errors,
      churnMs: c.elapsedMs,
      churnCpuMsPerLogin: c.completed > 0 ? churnCpuMs / c.completed : NaN,
      rssBeforeChurnKiB,
      rssAfterChurnKiB,
      closeFailed,
      exitCode: await server.stop(),
      serverOutput: server.output().slice(-2000),
    };
  } catch (e) {
    for (const p of pairs) {
      p.sender.destroy();
      p.receiver.destroy();
    }
    await server.stop();
    throw new Error(`${(e as Error).message}\nserver output:\n${server.output()}`);
  }
}

/** Log lines (plus errors and server output) for a finished run. */
export function describeChurnRun(r: ChurnRun): string {
  return `\n  before churn: ${describeRoute(r.before)}` +
    `\n  churn: ${r.churnLogins} logins (${r.churnFailed} failed) in ` +
    `${(r.churnMs / 1000).toFixed(2)} s, ${r.churnCpuMsPerLogin.toFixed(3)} ms server CPU/login, ` +
    `RSS ${mib(r.rssBeforeChurnKiB)} → ${mib(r.rssAfterChurnKiB)}` +
    `\n  after churn: ${describeRoute(r.after)}` +
    `\n  ${r.closeFailed} unclean closes, exit ${r.exitCode}` +
    details([...r.before.errors, ...r.churnErrors, ...r.after.errors], r.serverOutput);
}

/** The table rows for the route-churn runs. */
export function churnRows(runs: ChurnRun[], churn: number): Row[] {
  const name = `route-churn ${LOADED.label}`;
  const us = (m: RouteMeasure) => m.cpuUsPerMessage;
  return [
    row(name, "server CPU µs/msg, before churn", runs.map((r) => us(r.before)), 1),
    row(
      name,
      `server CPU µs/msg, after ${churn} logins`,
      runs.map((r) => us(r.after)),
      1,
      ANCHORS.cpuPerMessageAfterChurn,
    ),
    row(name, "after ÷ before", runs.map((r) => us(r.after) / us(r.before)), 2),
    row(name, "server CPU ms/login in churn", runs.map((r) => r.churnCpuMsPerLogin), 3),
    row(name, "RSS MiB before churn", runs.map((r) => r.rssBeforeChurnKiB / 1024), 0),
    row(name, "RSS MiB after churn", runs.map((r) => r.rssAfterChurnKiB / 1024), 0),
    row(
      name,
      "not delivered (before + after)",
      runs.map((r) => r.before.sent - r.before.delivered + r.after.sent - r.after.delivered),
      0,
    ),
    row(name, "failed churn logins", runs.map((r) => r.churnFailed), 0),
  ];
}
