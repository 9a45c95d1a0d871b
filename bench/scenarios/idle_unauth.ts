/**
 * Idle unauthenticated connections: a fresh server, 50 warm-up logins, then
 * N TCP connections (from 127.0.0.1–127.0.0.8) that each send a stream
 * header, read the server's features and then sit idle without
 * authenticating. Reports how many the server accepted (answered with its
 * stream features) and kept open through the hold, the server's RSS delta
 * right after opening (per accepted connection) and after the hold (per
 * kept connection; a server may time unauthenticated streams out, as
 * ejabberd does after 30 s), its CPU while they sit, and RSS once they are
 * gone. A server that caps unauthenticated connections per
 * address shows it here as connections refused or closed.
 * @module
 */
import { BenchConnection, loopbackSource } from "../connection.ts";
import { OPEN_SETUP, PHASE_LIMIT_MS, warmAccounts, warmUp } from "../open_logins.ts";
import { runPool } from "../pool.ts";
import { details, mib, type Row, row, seconds } from "../report.ts";
import { SERVER_HOST } from "../server_process.ts";
import { type AccountSetup, NO_LIMITS, type ServerUnderTest, type Template } from "../servers.ts";
import { sampleCpu } from "./idle_memory.ts";

/** The figures of one run. */
export interface UnauthRun {
  attempted: number;
  /** TCP connections that were established. */
  connected: number;
  /** Of those, the ones the server answered with its stream features. */
  accepted: number;
  /** Of those, the ones still open at the end of the hold. */
  kept: number;
  errors: string[];
  openMs: number;
  rssBeforeKiB: number;
  /** RSS right after the last connection was opened (before the hold). */
  rssOpenedKiB: number;
  /** (rssOpened − rssBefore) ÷ accepted, KiB. */
  kibPerAccepted: number;
  rssHeldKiB: number;
  /** RSS delta ÷ connections kept, KiB. */
  kibPerConnection: number;
  holdSeconds: number;
  holdCpuMs: number;
  rssAfterCloseKiB: number;
  exitCode: number;
  serverOutput: string;
}

/** Accounts: only the warm-up's. */
export function unauthSetup(concurrency: number, noLimits = false): AccountSetup {
  return { accounts: warmAccounts(concurrency), cadence: noLimits ? NO_LIMITS : undefined };
}

/** How the scenario was set up, for the report. */
export const UNAUTH_SETUP = `${OPEN_SETUP} for the 50 warm-up logins; then connections that ` +
  "send a stream header, get the features and sit idle unauthenticated, spread over source " +
  "addresses 127.0.0.1–127.0.0.8 (8 addresses)";

const HEADER = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' " +
  "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
const FEATURES_END = /<\/stream:features>|<stream:features\s*\/>/;
const STEP_TIMEOUT_MS = 10_000;
/** Pause after the last connection is dropped before reading RSS. */
const AFTER_CLOSE_MS = 5_000;
/** Pause before the first RSS sample, so the warm-up's sessions are torn down. */
const SETTLE_MS = 1_000;

/** One run on a fresh server. */
export async function runIdleUnauth(
  sut: ServerUnderTest,
  template: Template,
  connections: number,
  concurrency: number,
  holdSeconds: number,
): Promise<UnauthRun> {
  const server = await sut.start(template);
  const open: BenchConnection[] = [];
  try {
    await warmUp(server.port, concurrency);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const rssBeforeKiB = await server.rssKiB();
    let connected = 0;
    const opened = await runPool(connections, concurrency, PHASE_LIMIT_MS, async (i) => {
      const conn = await BenchConnection.open(
        { host: SERVER_HOST, port: server.port, localAddress: loopbackSource(i) },
        STEP_TIMEOUT_MS,
      );
      open.push(conn);
      connected++;
      conn.send(HEADER);
      await conn.waitFor(FEATURES_END, STEP_TIMEOUT_MS);
      conn.discardIncoming();
    });
    const rssOpenedKiB = await server.rssKiB();
    const holdCpuSlicesMs = await sampleCpu(server, holdSeconds);
    const rssHeldKiB = await server.rssKiB();
    const kept = open.filter((c) => !c.closed).length;
    for (const c of open) c.destroy();
    await new Promise((resolve) => setTimeout(resolve, AFTER_CLOSE_MS));
    const rssAfterCloseKiB = await server.rssKiB();
    return {
      attempted: connections,
      connected,
      accepted: opened.completed,
      kept,
      errors: opened.errors,
      openMs: opened.elapsedMs,
      rssBeforeKiB,
      rssOpenedKiB,
      kibPerAccepted: opened.completed > 0 ? (rssOpenedKiB - rssBeforeKiB) / opened.completed : NaN,
      rssHeldKiB,
      kibPerConnection: kept > 0 ? (rssHeldKiB - rssBeforeKiB) / kept : NaN,
      holdSeconds,
      holdCpuMs: holdCpuSlicesMs.reduce((a, b) => a + b, 0),
      rssAfterCloseKiB,
      exitCode: await server.stop(),
      serverOutput: server.output().slice(-2000),
    };
  } catch (e) {
    for (const c of open) c.destroy();
    await server.stop();
    throw new Error(`${(e as Error).message}\nserver output:\n${server.output()}`);
  }
}

/** One log line (plus errors and server output) for a finished run. */
export function describeUnauthRun(r: UnauthRun): string {
  return `${r.connected}/${r.attempted} connected, ${r.accepted} got stream features, ` +
    `${r.kept} still open after ${r.holdSeconds} s (opened in ${seconds(r.openMs)}); ` +
    `RSS ${mib(r.rssBeforeKiB)} → ${mib(r.rssOpenedKiB)} just opened = ` +
    `${r.kibPerAccepted.toFixed(1)} KiB/connection accepted → ${mib(r.rssHeldKiB)} after the ` +
    `hold = ${r.kibPerConnection.toFixed(1)} KiB/connection kept; server CPU over the hold ` +
    `${seconds(r.holdCpuMs)}; ` +
    `RSS after all dropped ${mib(r.rssAfterCloseKiB)}; exit ${r.exitCode}` +
    details(r.errors, r.serverOutput);
}

/** The table rows for the idle-unauth runs. */
export function unauthRows(runs: UnauthRun[], connections: number): Row[] {
  const name = `idle-unauth ${connections} conn.`;
  return [
    row(name, "KiB per connection accepted, just opened", runs.map((r) => r.kibPerAccepted), 1),
    row(name, "KiB per connection kept, after hold", runs.map((r) => r.kibPerConnection), 1),
    row(
      name,
      "RSS MiB delta, just opened",
      runs.map((r) => (r.rssOpenedKiB - r.rssBeforeKiB) / 1024),
      1,
    ),
    row(
      name,
      "RSS MiB delta, after hold",
      runs.map((r) => (r.rssHeldKiB - r.rssBeforeKiB) / 1024),
      1,
    ),
    row(name, "TCP connections established", runs.map((r) => r.connected), 0, undefined, ""),
    row(name, "connections answered with features", runs.map((r) => r.accepted), 0, undefined, ""),
    row(name, "connections kept through hold", runs.map((r) => r.kept), 0, undefined, ""),
    row(name, "server CPU s over hold", runs.map((r) => r.holdCpuMs / 1000), 2),
    row(name, "RSS MiB before", runs.map((r) => r.rssBeforeKiB / 1024), 0),
    row(name, "RSS MiB after all dropped", runs.map((r) => r.rssAfterCloseKiB / 1024), 0),
  ];
}
