/**
 * Idle memory: a fresh server, 50 warm-up logins, then K bound sessions with
 * initial presence held open. Reports (RSS after holding − RSS before
 * opening) ÷ K, the server's CPU while holding, and RSS once all are closed.
 * @module
 */
import { type BenchConnection, loopbackSource } from "../connection.ts";
import { openFileLimit } from "../proc.ts";
import { runPool } from "../pool.ts";
import { ANCHORS, details, mib, type Row, row, seconds } from "../report.ts";
import { SERVER_HOST } from "../server_process.ts";
import {
  type AccountSetup,
  numbered,
  type RunningServer,
  type ServerUnderTest,
  type Template,
} from "../servers.ts";
import { closeSession, login, openSession } from "../xmpp_steps.ts";
import { OPEN_MODE, OPEN_SETUP, PHASE_LIMIT_MS, WARMUP_LOGINS } from "../open_logins.ts";

/** The figures of one measured run. */
export interface IdleRun {
  sessions: number;
  failed: number;
  errors: string[];
  openMs: number;
  rssBeforeKiB: number;
  rssHeldKiB: number;
  kibPerSession: number;
  holdSeconds: number;
  holdCpuMs: number;
  /** Server CPU in each successive slice of the hold (see HOLD_SLICE_S), to show when it was spent. */
  holdCpuSlicesMs: number[];
  /** Sessions the server closed by itself during the hold (should be 0). */
  droppedDuringHold: number;
  closeFailed: number;
  rssAfterCloseKiB: number;
  exitCode: number;
  /** The end of what the server printed (warnings and errors only, at `log: "warn"`). */
  serverOutput: string;
}

/** How accounts were set up, for the report. */
export const IDLE_SETUP = `${OPEN_SETUP}, ` +
  "sessions spread over source addresses 127.0.0.1–127.0.0.8";

/** Pause after the last close before reading RSS, so the server can finish tearing down. */
const AFTER_CLOSE_MS = 5_000;
/** Length of one slice of the hold over which server CPU is sampled, in seconds. */
const HOLD_SLICE_S = 5;
/** File descriptors kept free for everything else in a process. */
const SPARE_FDS = 200;

/**
 * Checks that this process (and the server, which inherits its limit) may
 * open `sessions` sockets; the hard limit here cannot be raised, so a
 * larger K fails early with the reason.
 */
export async function checkFileLimit(sessions: number): Promise<number> {
  const limit = await openFileLimit();
  if (sessions + SPARE_FDS > limit) {
    throw new Error(
      `--sessions ${sessions} needs ${sessions + SPARE_FDS} open files but the limit is ${limit} ` +
        `(ulimit -n); use --sessions ${limit - SPARE_FDS} or less, or raise the limit`,
    );
  }
  return limit;
}

/** Server CPU (ms) spent in each slice of `seconds`, slice by slice. */
export async function sampleCpu(server: RunningServer, seconds: number): Promise<number[]> {
  const slices: number[] = [];
  let last = await server.cpuMs();
  for (let left = seconds; left > 0; left -= HOLD_SLICE_S) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(left, HOLD_SLICE_S) * 1000));
    const now = await server.cpuMs();
    slices.push(now - last);
    last = now;
  }
  return slices;
}

function user(i: number) {
  return { username: `idle${i}`, password: "any" };
}

/** The accounts the idle runs log in with: the warm-up's and the held sessions'. */
export function idleSetup(sessions: number): AccountSetup {
  return { accounts: numbered("idle", Math.max(sessions, WARMUP_LOGINS)) };
}

/** One measured run. */
export async function runIdle(
  sut: ServerUnderTest,
  template: Template,
  sessions: number,
  concurrency: number,
  holdSeconds: number,
): Promise<IdleRun> {
  const server = await sut.start(template);
  const open: BenchConnection[] = [];
  try {
    const target = (i: number) => ({
      host: SERVER_HOST,
      port: server.port,
      localAddress: loopbackSource(i),
    });
    const warm = await runPool(
      WARMUP_LOGINS,
      concurrency,
      PHASE_LIMIT_MS,
      (i) => login(target(i), user(i), "warm", OPEN_MODE),
    );
    if (warm.completed === 0) {
      throw new Error(`every warm-up login failed: ${warm.errors.join(" | ")}`);
    }
    const rssBeforeKiB = await server.rssKiB();
    const opened = await runPool(sessions, concurrency, PHASE_LIMIT_MS, async (i) => {
      const conn = await openSession(target(i), user(i), "idle", OPEN_MODE);
      conn.discardIncoming();
      open.push(conn);
    });
    const holdCpuSlicesMs = await sampleCpu(server, holdSeconds);
    const holdCpuMs = holdCpuSlicesMs.reduce((a, b) => a + b, 0);
    const rssHeldKiB = await server.rssKiB();
    const droppedDuringHold = open.filter((c) => c.closed).length;
    const closing = await runPool(
      open.length,
      concurrency,
      PHASE_LIMIT_MS,
      (i) => closeSession(open[i], OPEN_MODE.stepTimeoutMs),
    );
    await new Promise((resolve) => setTimeout(resolve, AFTER_CLOSE_MS));
    const rssAfterCloseKiB = await server.rssKiB();
    return {
      sessions: opened.completed,
      failed: opened.failed,
      errors: opened.errors,
      openMs: opened.elapsedMs,
      rssBeforeKiB,
      rssHeldKiB,
      kibPerSession: opened.completed > 0 ? (rssHeldKiB - rssBeforeKiB) / opened.completed : NaN,
      holdSeconds,
      holdCpuMs,
      holdCpuSlicesMs,
      droppedDuringHold,
      closeFailed: closing.failed,
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
export function describeIdleRun(r: IdleRun): string {
  const perSession = r.kibPerSession.toFixed(1);
  const slices = r.holdCpuSlicesMs.map((ms) => ms.toFixed(0)).join(" ");
  return `${r.sessions} sessions (${r.failed} failed) opened in ${seconds(r.openMs)}, ` +
    `RSS ${mib(r.rssBeforeKiB)} → ${mib(r.rssHeldKiB)} = ${perSession} KiB/session, ` +
    `server CPU over ${r.holdSeconds} s hold ${seconds(r.holdCpuMs)} ` +
    `(ms per ${HOLD_SLICE_S} s: ${slices}), ${r.droppedDuringHold} dropped by the server, ` +
    `RSS after close ${mib(r.rssAfterCloseKiB)} (${r.closeFailed} unclean closes), ` +
    `exit ${r.exitCode}` + details(r.errors, r.serverOutput);
}

/** The table rows for the idle-memory runs. */
export function idleRows(runs: IdleRun[], holdSeconds: number): Row[] {
  const name = "idle-memory";
  return [
    row(
      name,
      "KiB per idle session",
      runs.map((r) => r.kibPerSession),
      1,
      ANCHORS.kibPerIdleSession,
    ),
    row(
      name,
      `server CPU s over ${holdSeconds} s hold`,
      runs.map((r) => r.holdCpuMs / 1000),
      2,
      ANCHORS.idleHoldCpu,
    ),
    row(name, "RSS MiB before opening", runs.map((r) => r.rssBeforeKiB / 1024), 0),
    row(name, "RSS MiB, sessions held", runs.map((r) => r.rssHeldKiB / 1024), 0),
    row(
      name,
      "RSS MiB after all closed",
      runs.map((r) => r.rssAfterCloseKiB / 1024),
      0,
      ANCHORS.rssAfterClose,
    ),
  ];
}
