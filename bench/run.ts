/**
 * `deno task bench`: runs each scenario on fresh server processes, prints a
 * table beside the Prosody and ejabberd anchors, and writes a JSON summary
 * to `bench/results/<timestamp>.json`. See `--help` for options and
 * shared/reference/benchmarking.md for the method.
 * @module
 */
import { type BenchOptions, parseOptions, type ScenarioName, USAGE } from "./options.ts";
import { clockTicksPerSecond, openFileLimit } from "./proc.ts";
import {
  prepareTemplate,
  removeAccounts,
  ServerProcess,
  serverRoot,
  useServerRoot,
} from "./server_process.ts";
import { renderTable, type Row, seconds } from "./report.ts";
import {
  describeLoginRun,
  LOGIN_PLAIN,
  LOGIN_SCRAM,
  loginRows,
  type LoginRun,
  type LoginScenario,
  prepareLogin,
  runLogin,
} from "./scenarios/login.ts";
import {
  checkFileLimit,
  describeIdleRun,
  IDLE_SETUP,
  idleRows,
  type IdleRun,
  runIdle,
} from "./scenarios/idle_memory.ts";
import {
  describeRouteRun,
  LOADED,
  ROUTE_SETUP,
  routeRows,
  type RouteRun,
  runRoute,
  UNLOADED,
} from "./scenarios/route.ts";
import {
  churnRows,
  type ChurnRun,
  churnSetup,
  describeChurnRun,
  runRouteChurn,
} from "./scenarios/route_churn.ts";
import {
  describePresenceRun,
  PRESENCE_SETUP,
  presenceRows,
  type PresenceRun,
  runPresence,
  seedRosters,
} from "./scenarios/presence.ts";
import { OPEN_CONFIG } from "./open_logins.ts";

/** What one scenario produced, as written to the JSON summary. */
interface ScenarioResult {
  name: ScenarioName;
  setup: string;
  runs: (LoginRun | IdleRun | RouteRun | ChurnRun | PresenceRun)[];
  rows: Row[];
  error?: string;
}

function log(text: string) {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}`);
}

async function loginScenario(s: LoginScenario, o: BenchOptions): Promise<ScenarioResult> {
  const runs: LoginRun[] = [];
  let error: string | undefined;
  const t0 = performance.now();
  let template: string | undefined;
  try {
    template = await prepareLogin(s, o.concurrency);
    log(`${s.name}: registered ${o.concurrency} accounts in ${seconds(performance.now() - t0)}`);
    for (let run = 1; run <= o.runs; run++) {
      runs.push(await runLogin(s, template, o.logins, o.concurrency));
      log(`${s.name} run ${run}/${o.runs}: ${describeLoginRun(runs[runs.length - 1])}`);
    }
  } catch (e) {
    error = (e as Error).message;
    log(`${s.name} failed: ${error}`);
  } finally {
    if (template) await removeAccounts(template);
  }
  const name = s.name as ScenarioName;
  return { name, setup: s.setup, runs, rows: loginRows(s, runs), error };
}

async function idleScenario(o: BenchOptions): Promise<ScenarioResult> {
  const runs: IdleRun[] = [];
  let error: string | undefined;
  try {
    const limit = await checkFileLimit(o.sessions);
    log(`idle-memory: ${o.sessions} sessions; open-file limit ${limit}, used as it is`);
    for (let run = 1; run <= o.runs; run++) {
      runs.push(await runIdle(o.sessions, o.concurrency, o.holdSeconds));
      log(`idle-memory run ${run}/${o.runs}: ${describeIdleRun(runs[runs.length - 1])}`);
    }
  } catch (e) {
    error = (e as Error).message;
    log(`idle-memory failed: ${error}`);
  }
  return {
    name: "idle-memory",
    setup: IDLE_SETUP,
    runs,
    rows: idleRows(runs, o.holdSeconds),
    error,
  };
}

async function routeScenario(o: BenchOptions): Promise<ScenarioResult> {
  const runs: RouteRun[] = [];
  const rows: Row[] = [];
  let error: string | undefined;
  for (const shape of [LOADED, UNLOADED]) {
    const shapeRuns: RouteRun[] = [];
    try {
      for (let run = 1; run <= o.runs; run++) {
        shapeRuns.push(await runRoute(shape, o.messages, o.concurrency));
        log(`route run ${run}/${o.runs} ${describeRouteRun(shapeRuns[shapeRuns.length - 1])}`);
      }
    } catch (e) {
      error = (e as Error).message;
      log(`route ${shape.label} failed: ${error}`);
    }
    runs.push(...shapeRuns);
    rows.push(...routeRows(shape, shapeRuns));
  }
  return { name: "route", setup: ROUTE_SETUP, runs, rows, error };
}

async function routeChurnScenario(o: BenchOptions): Promise<ScenarioResult> {
  const runs: ChurnRun[] = [];
  let error: string | undefined;
  try {
    for (let run = 1; run <= o.runs; run++) {
      runs.push(await runRouteChurn(o.messages, o.churn, o.concurrency));
      log(`route-churn run ${run}/${o.runs}: ${describeChurnRun(runs[runs.length - 1])}`);
    }
  } catch (e) {
    error = (e as Error).message;
    log(`route-churn failed: ${error}`);
  }
  const rows = churnRows(runs, o.churn);
  return { name: "route-churn", setup: churnSetup(o.churn), runs, rows, error };
}

async function presenceScenario(o: BenchOptions): Promise<ScenarioResult> {
  const runs: PresenceRun[] = [];
  let error: string | undefined;
  let template: string | undefined;
  try {
    const t0 = performance.now();
    template = await prepareTemplate(OPEN_CONFIG, (file) => seedRosters(file, o.contacts));
    log(
      `presence: seeded ${o.contacts} mutual subscriptions in ${seconds(performance.now() - t0)}`,
    );
    for (let run = 1; run <= o.runs; run++) {
      runs.push(await runPresence(template, o.contacts, o.broadcasts, o.concurrency));
      log(`presence run ${run}/${o.runs}: ${describePresenceRun(runs[runs.length - 1])}`);
    }
  } catch (e) {
    error = (e as Error).message;
    log(`presence failed: ${error}`);
  } finally {
    if (template) await removeAccounts(template);
  }
  const rows = presenceRows(runs, o.contacts);
  return { name: "presence", setup: PRESENCE_SETUP, runs, rows, error };
}

async function main(): Promise<number> {
  let options;
  try {
    options = parseOptions(Deno.args);
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === "help") {
    console.log(USAGE);
    return 0;
  }
  if (options.server) useServerRoot(options.server);
  const started = new Date();
  const machine = {
    cpus: navigator.hardwareConcurrency,
    loadavg: Deno.loadavg(),
    deno: Deno.version.deno,
    clockTicks: await clockTicksPerSecond(),
    openFileLimit: await openFileLimit(),
    server: serverRoot(),
    commit: await commitOf(serverRoot()),
  };
  log(`options ${JSON.stringify(options)}; machine ${JSON.stringify(machine)}`);
  const results: ScenarioResult[] = [];
  for (const name of options.only) {
    if (name === "login-plain") results.push(await loginScenario(LOGIN_PLAIN, options));
    if (name === "login-scram") results.push(await loginScenario(LOGIN_SCRAM, options));
    if (name === "idle-memory") results.push(await idleScenario(options));
    if (name === "route") results.push(await routeScenario(options));
    if (name === "route-churn") results.push(await routeChurnScenario(options));
    if (name === "presence") results.push(await presenceScenario(options));
  }
  console.log(
    `\nCadence benchmark — ${options.runs} fresh-server run(s) per scenario, ` +
      `${options.concurrency} concurrent clients, ${options.logins} logins per login run, ` +
      `${options.sessions} idle sessions held ${options.holdSeconds} s, ` +
      `${options.messages} messages per sender, ${options.churn} churn logins, ` +
      `${options.broadcasts} status changes to ${options.contacts} contacts; load average at start ` +
      `${machine.loadavg.map((l) => l.toFixed(2)).join(" ")} on ${machine.cpus} CPUs; ` +
      `server ${machine.server} at ${machine.commit}.\n`,
  );
  console.log(renderTable(results.flatMap((r) => r.rows)));
  console.log("\nSetup:");
  for (const r of results) {
    const failed = r.error ? ` — FAILED: ${r.error.split("\n")[0]}` : "";
    console.log(`  ${r.name}: ${r.setup}${failed}`);
  }
  console.log(
    "Server CPU = utime+stime+cutime+cstime of the server process (/proc/PID/stat, " +
      `${machine.clockTicks} ticks/s), sampled around the measured phase; ` +
      "anchors from shared/reference/benchmarking.md.",
  );
  const file = await writeSummary(started, { options, machine, results });
  console.log(`\nJSON summary: ${file}`);
  return results.some((r) => r.error) ? 1 : 0;
}

/** The commit a checkout is at (read-only git), with "+changes" when its tree differs. */
async function commitOf(dir: string): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", {
      args: ["--no-optional-locks", "-C", dir, ...args],
      stdout: "piped",
      stderr: "null",
    })
      .output().catch(() => undefined);
    return out?.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  const head = await git("rev-parse", "--short", "HEAD");
  if (!head) return "unknown commit";
  const changes = await git("status", "--porcelain", "--untracked-files=no");
  return changes ? `${head}+changes` : head;
}

async function writeSummary(started: Date, summary: Record<string, unknown>): Promise<string> {
  const dir = new URL("./results/", import.meta.url).pathname;
  await Deno.mkdir(dir, { recursive: true });
  const file = `${dir}${started.toISOString().replace(/[:.]/g, "-")}.json`;
  const data = { started: started.toISOString(), finished: new Date().toISOString(), ...summary };
  await Deno.writeTextFile(file, JSON.stringify(data, null, 2) + "\n");
  return file;
}

if (import.meta.main) {
  Deno.addSignalListener("SIGINT", async () => {
    log("interrupted: stopping servers and removing their directories");
    await ServerProcess.stopAll();
    Deno.exit(130);
  });
  Deno.exit(await main());
}
