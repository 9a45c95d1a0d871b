/**
 * Logins for the scenarios that measure something other than
 * authentication: accounts created before the runs, all with the password
 * "any", stored in plain text, PLAIN on plain TCP — the same on every server
 * under test. The login mode, and pools of complete logins (the warm-up, and
 * churn).
 * @module
 */
import { loopbackSource, type Target } from "./connection.ts";
import { type PoolResult, runPool } from "./pool.ts";
import { SERVER_HOST } from "./server_process.ts";
import { type Account, login, type LoginMode } from "./xmpp_steps.ts";

/** How clients log in to such a server. */
export const OPEN_MODE: LoginMode = { mechanism: "PLAIN", starttls: false, stepTimeoutMs: 30_000 };

/** How accounts and auth were set up, for the report. */
export const OPEN_SETUP = "accounts created before the runs, plaintext-stored passwords, " +
  "PLAIN on plain TCP";

/** Logins before a measured phase, as the reference method does. */
export const WARMUP_LOGINS = 50;

/** Limit for a whole pool of logins or session openings. */
export const PHASE_LIMIT_MS = 10 * 60_000;

/** The accounts {@link runLogins} uses with `prefix` and `concurrency` clients. */
export function loginPoolAccounts(prefix: string, concurrency: number): Account[] {
  return Array.from(
    { length: concurrency },
    (_, w) => ({ username: `${prefix}${w}`, password: "any" }),
  );
}

/** The accounts of {@link warmUp}. */
export function warmAccounts(concurrency: number): Account[] {
  return loginPoolAccounts("warm", Math.min(concurrency, WARMUP_LOGINS));
}

/** Where the i-th client connects from and to. */
export function target(port: number, i: number): Target {
  return { host: SERVER_HOST, port, localAddress: loopbackSource(i) };
}

/**
 * `count` complete logins (open, bind, initial presence, close) with
 * `concurrency` clients, one account per client named `prefix<worker>`.
 */
export function runLogins(
  port: number,
  count: number,
  concurrency: number,
  prefix: string,
): Promise<PoolResult> {
  return runPool(count, concurrency, PHASE_LIMIT_MS, (i, w) =>
    login(
      target(port, i),
      { username: `${prefix}${w}`, password: "any" },
      `r${i}`,
      OPEN_MODE,
    ));
}

/** The warm-up before measuring; throws when every login failed. */
export async function warmUp(port: number, concurrency: number): Promise<void> {
  const warm = await runLogins(port, WARMUP_LOGINS, concurrency, "warm");
  if (warm.completed === 0) {
    throw new Error(`every warm-up login failed: ${warm.errors.join(" | ")}`);
  }
}
