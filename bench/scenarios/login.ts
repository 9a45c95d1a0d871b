/**
 * Login scenarios: a fresh server, 50 warm-up logins, then N measured logins
 * with C concurrent clients. Reports logins/s and the server's CPU per login.
 * @module
 */
import { loopbackSource } from "../connection.ts";
import { cpuMs } from "../proc.ts";
import { runPool } from "../pool.ts";
import { ANCHORS, details, mib, NO_ANCHOR, type Row, row, seconds } from "../report.ts";
import { SERVER_HOST } from "../server_process.ts";
import type { AccountSetup, ServerUnderTest, Template } from "../servers.ts";
import { type Account, login, type LoginMode } from "../xmpp_steps.ts";

/** A login scenario: how passwords are stored and how clients log in. */
export interface LoginScenario {
  name: string;
  /** "plain": plaintext passwords, no TLS; "scram": hashed passwords, STARTTLS. */
  auth: "plain" | "scram";
  mode: LoginMode;
  /** One line for the report on how accounts and auth were set up. */
  setup: string;
}

/** The figures of one measured run. */
export interface LoginRun {
  completed: number;
  failed: number;
  errors: string[];
  elapsedMs: number;
  loginsPerSecond: number;
  serverCpuMs: number;
  cpuMsPerLogin: number;
  /** The load generator's own CPU over the measured phase (this process). */
  generatorCpuMs: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  exitCode: number;
  /** The end of what the server printed (warnings and errors only, at `log: "warn"`). */
  serverOutput: string;
}

const STEP_TIMEOUT_MS = 10_000;
const PHASE_LIMIT_MS = 10 * 60_000;
const WARMUP_LOGINS = 50;
/** Time given to the server to finish tearing down the last sessions before the final sample. */
const SETTLE_MS = 250;

/** SASL PLAIN on plain TCP against plaintext-stored passwords: the peers' like-for-like setup. */
export const LOGIN_PLAIN: LoginScenario = {
  name: "login-plain",
  auth: "plain",
  mode: { mechanism: "PLAIN", starttls: false, stepTimeoutMs: STEP_TIMEOUT_MS },
  setup: "plaintext-stored passwords, no TLS, one account per client created before the runs",
};

/** SCRAM-SHA-1 after STARTTLS against salted hashes (the server's defaults). */
export const LOGIN_SCRAM: LoginScenario = {
  name: "login-scram",
  auth: "scram",
  mode: { mechanism: "SCRAM-SHA-1", starttls: true, stepTimeoutMs: STEP_TIMEOUT_MS },
  setup: "hashed passwords (Cadence and Prosody internal_hashed, ejabberd " +
    "auth_password_format scram; 4096 iterations), STARTTLS required, ECDSA P-256 " +
    "self-signed certificates, one account per client created before the runs; the client " +
    "caches SaltedPassword as real clients do",
};

/** One account per concurrent client, so no user ever has two sessions at once. */
export function loginAccounts(concurrency: number): Account[] {
  return Array.from({ length: concurrency }, (_, w) => ({
    username: `bench${w}`,
    password: `bench-password-${w}`,
  }));
}

/** The accounts a login scenario needs. */
export function loginSetup(scenario: LoginScenario, concurrency: number): AccountSetup {
  return { accounts: loginAccounts(concurrency), auth: scenario.auth };
}

/** One measured run on a fresh server whose data is copied from `template`. */
export async function runLogin(
  sut: ServerUnderTest,
  scenario: LoginScenario,
  template: Template,
  logins: number,
  concurrency: number,
): Promise<LoginRun> {
  const accounts = loginAccounts(concurrency);
  const server = await sut.start(template);
  try {
    const attempt = (offset: number) => (i: number, w: number) =>
      login(
        { host: SERVER_HOST, port: server.port, localAddress: loopbackSource(offset + i) },
        accounts[w],
        `r${offset + i}`,
        scenario.mode,
      );
    const warm = await runPool(WARMUP_LOGINS, concurrency, PHASE_LIMIT_MS, attempt(0));
    if (warm.completed === 0) {
      throw new Error(`every warm-up login failed: ${warm.errors.join(" | ")}`);
    }
    const rssBeforeKiB = await server.rssKiB();
    const cpuBefore = await server.cpuMs();
    const ownBefore = await cpuMs(Deno.pid);
    const r = await runPool(logins, concurrency, PHASE_LIMIT_MS, attempt(WARMUP_LOGINS));
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const serverCpuMs = (await server.cpuMs()) - cpuBefore;
    const generatorCpuMs = (await cpuMs(Deno.pid)) - ownBefore;
    const rssAfterKiB = await server.rssKiB();
    return {
      completed: r.completed,
      failed: r.failed,
      errors: r.errors,
      elapsedMs: r.elapsedMs,
      loginsPerSecond: r.completed / (r.elapsedMs / 1000),
      serverCpuMs,
      cpuMsPerLogin: r.completed > 0 ? serverCpuMs / r.completed : NaN,
      generatorCpuMs,
      rssBeforeKiB,
      rssAfterKiB,
      exitCode: await server.stop(),
      serverOutput: server.output().slice(-2000),
    };
  } catch (e) {
    await server.stop();
    throw new Error(`${(e as Error).message}\nserver output:\n${server.output()}`);
  }
}

/** One log line (plus errors and server output) for a finished run. */
export function describeLoginRun(r: LoginRun): string {
  return `${r.completed} ok, ${r.failed} failed, ${r.loginsPerSecond.toFixed(0)} logins/s, ` +
    `server CPU ${seconds(r.serverCpuMs)} = ${r.cpuMsPerLogin.toFixed(3)} ms/login ` +
    `(generator ${seconds(r.generatorCpuMs)}), ` +
    `RSS ${mib(r.rssBeforeKiB)} → ${mib(r.rssAfterKiB)}, exit ${r.exitCode}` +
    details(r.errors, r.serverOutput);
}

/** The table rows for a login scenario's runs. */
export function loginRows(scenario: LoginScenario, runs: LoginRun[]): Row[] {
  const anchor = scenario === LOGIN_PLAIN ? ANCHORS.cpuPerPlainLogin : NO_ANCHOR;
  return [
    row(scenario.name, "server CPU ms/login", runs.map((r) => r.cpuMsPerLogin), 3, anchor),
    row(scenario.name, "logins/s", runs.map((r) => r.loginsPerSecond), 0),
    row(scenario.name, "RSS MiB after logins", runs.map((r) => r.rssAfterKiB / 1024), 0),
    row(scenario.name, "failed logins", runs.map((r) => r.failed), 0),
  ];
}
