/**
 * `deno task bench`: runs each scenario on fresh server processes and prints
 * a table — Cadence beside the Prosody and ejabberd anchors of
 * shared/reference/benchmarking.md, or with `--peers` beside Prosody and
 * ejabberd measured in the same run (interleaved run by run), with ratios —
 * and writes a JSON summary to `bench/results/<timestamp>.json`. See
 * `--help` for options.
 * @module
 */
import { createHash } from "node:crypto";
import { type BenchOptions, parseOptions, type ScenarioName, USAGE } from "./options.ts";
import { clockTicksPerSecond, openFileLimit } from "./proc.ts";
import { ServerProcess, serverRoot, useServerRoot } from "./server_process.ts";
import {
  mergeRows,
  renderPeerTable,
  renderTable,
  type Row,
  seconds,
  type TableRow,
} from "./report.ts";
import {
  type AccountSetup,
  CADENCE,
  NO_LIMITS,
  type ServerUnderTest,
  type Template,
} from "./servers.ts";
import { PROSODY_SUT } from "./peers/prosody.ts";
import { EJABBERD_SUT } from "./peers/ejabberd.ts";
import { describePepRun, PEP_SETUP, pepRows, pepSetup, runPep } from "./scenarios/pep.ts";
import { describeS2sRun, runS2s, S2S_SETUP, s2sRows, type S2sRun } from "./scenarios/s2s.ts";
import { describeMucRun, MUC_SETUP, mucRows, mucSetup, runMuc } from "./scenarios/muc.ts";
import {
  type ArchiveCost,
  archiveCost,
  archiveCostRows,
  MOBILE_SETUP,
  mobileRows,
  type MobileRun,
  runMobile,
} from "./scenarios/mobile.ts";
import {
  describeLoginRun,
  LOGIN_PLAIN,
  LOGIN_SCRAM,
  loginRows,
  type LoginScenario,
  loginSetup,
  runLogin,
} from "./scenarios/login.ts";
import {
  checkFileLimit,
  describeIdleRun,
  IDLE_SETUP,
  idleRows,
  idleSetup,
  runIdle,
} from "./scenarios/idle_memory.ts";
import {
  describeRouteRun,
  LOADED,
  ROUTE_SETUP,
  routeRows,
  routeSetup,
  runRoute,
  UNLOADED,
} from "./scenarios/route.ts";
import {
  churnAccountSetup,
  churnRows,
  churnSetup,
  describeChurnRun,
  runRouteChurn,
} from "./scenarios/route_churn.ts";
import {
  describePresenceRun,
  PRESENCE_SETUP,
  presenceRows,
  presenceSetup,
  runPresence,
} from "./scenarios/presence.ts";
import {
  describeFloodRun,
  floodDescription,
  floodRows,
  floodSetup,
  runFlood,
} from "./scenarios/flood.ts";
import {
  describeUnauthRun,
  runIdleUnauth,
  UNAUTH_SETUP,
  unauthRows,
  unauthSetup,
} from "./scenarios/idle_unauth.ts";
import {
  describeWebRun,
  runWeb,
  WEB_PAIRS,
  WEB_SETUP,
  WEB_WINDOW,
  webRows,
  type WebRun,
  webSetup,
} from "./scenarios/web.ts";

/** What one server produced in one scenario. */
interface ServerScenario {
  server: string;
  runs: unknown[];
  rows: Row[];
  errors: string[];
}

/** What one scenario produced, as written to the JSON summary. */
interface ScenarioResult {
  name: ScenarioName;
  setup: string;
  /** The servers it ran on (a peer may be left out: see `note`). */
  servers: ServerScenario[];
  note?: string;
}

/** A server as the summary describes it. */
interface ServerInfo {
  name: string;
  version: string;
  modules: string[];
  modulesNote: string;
  /** Why it was not measured (not installed), if it was not. */
  skipped?: string;
}

function log(text: string) {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}`);
}

/** What running one scenario on several servers gathers, server by server. */
class Gathered {
  readonly byServer = new Map<ServerUnderTest, ServerScenario>();

  constructor(readonly suts: ServerUnderTest[]) {
    for (const sut of suts) {
      this.byServer.set(sut, { server: sut.name, runs: [], rows: [], errors: [] });
    }
  }

  of(sut: ServerUnderTest): ServerScenario {
    return this.byServer.get(sut)!;
  }

  fail(sut: ServerUnderTest, label: string, e: unknown) {
    const message = (e as Error).message ?? String(e);
    this.of(sut).errors.push(`${label}: ${message}`);
    log(`${label} on ${sut.name} failed: ${message}`);
  }

  servers(): ServerScenario[] {
    return [...this.byServer.values()];
  }
}

/**
 * Prepares a template with `setup` on every server (a server whose
 * preparation fails is recorded and left out), runs `body`, and removes
 * the templates whatever happens.
 */
async function withTemplates(
  label: string,
  g: Gathered,
  setup: AccountSetup,
  body: (templates: Map<ServerUnderTest, Template>) => Promise<void>,
): Promise<void> {
  const templates = new Map<ServerUnderTest, Template>();
  try {
    for (const sut of g.suts) {
      const t0 = performance.now();
      try {
        templates.set(sut, await sut.prepare(setup));
        const rosters = setup.rosters ? ` and ${setup.rosters.contacts.length} contacts` : "";
        log(
          `${label}: ${sut.name}: ${setup.accounts.length} accounts${rosters} created in ` +
            seconds(performance.now() - t0),
        );
      } catch (e) {
        g.fail(sut, `${label} (creating accounts)`, e);
      }
    }
    await body(templates);
  } finally {
    for (const [sut, t] of templates) await sut.remove(t);
  }
}

/**
 * Runs `runOne` `runs` times on each server, interleaved: run 1 on every
 * server in order, then run 2, … so that drift of the machine hits all alike.
 */
async function interleave<R>(
  label: string,
  g: Gathered,
  templates: Map<ServerUnderTest, Template>,
  runs: number,
  runOne: (sut: ServerUnderTest, template: Template) => Promise<R>,
  describe: (r: R) => string,
): Promise<Map<ServerUnderTest, R[]>> {
  const results = new Map<ServerUnderTest, R[]>(g.suts.map((s) => [s, []]));
  for (let run = 1; run <= runs; run++) {
    for (const sut of g.suts) {
      const template = templates.get(sut);
      if (!template) continue;
      try {
        const r = await runOne(sut, template);
        results.get(sut)!.push(r);
        g.of(sut).runs.push(r);
        log(`${label} run ${run}/${runs} ${sut.name}: ${describe(r)}`);
      } catch (e) {
        g.fail(sut, `${label} run ${run}`, e);
      }
    }
  }
  return results;
}

async function loginScenario(
  s: LoginScenario,
  o: BenchOptions,
  suts: ServerUnderTest[],
): Promise<ScenarioResult> {
  const g = new Gathered(suts);
  await withTemplates(s.name, g, loginSetup(s, o.concurrency), async (templates) => {
    const runs = await interleave(
      s.name,
      g,
      templates,
      o.runs,
      (sut, t) => runLogin(sut, s, t, o.logins, o.concurrency),
      describeLoginRun,
    );
    for (const [sut, r] of runs) g.of(sut).rows.push(...loginRows(s, r));
  });
  return { name: s.name as ScenarioName, setup: s.setup, servers: g.servers() };
}

async function idleScenario(o: BenchOptions, suts: ServerUnderTest[]): Promise<ScenarioResult> {
  const g = new Gathered(suts);
  try {
    const limit = await checkFileLimit(o.sessions);
    log(`idle-memory: ${o.sessions} sessions; open-file limit ${limit}, used as it is`);
    await withTemplates("idle-memory", g, idleSetup(o.sessions), async (templates) => {
      const runs = await interleave(
        "idle-memory",
        g,
        templates,
        o.runs,
        (sut, t) => runIdle(sut, t, o.sessions, o.concurrency, o.holdSeconds),
        describeIdleRun,
      );
      for (const [sut, r] of runs) g.of(sut).rows.push(...idleRows(r, o.holdSeconds));
    });
  } catch (e) {
    for (const sut of suts) g.fail(sut, "idle-memory", e);
  }
  return { name: "idle-memory", setup: IDLE_SETUP, servers: g.servers() };
}

async function routeScenario(o: BenchOptions, suts: ServerUnderTest[]): Promise<ScenarioResult> {
  const g = new Gathered(suts);
  const setup = routeSetup(Math.max(LOADED.pairs, UNLOADED.pairs), o.concurrency);
  await withTemplates("route", g, setup, async (templates) => {
    for (const shape of [LOADED, UNLOADED]) {
      const runs = await interleave(
        `route ${shape.label}`,
        g,
        templates,
        o.runs,
        (sut, t) => runRoute(sut, t, shape, o.messages, o.concurrency),
        describeRouteRun,
      );
      for (const [sut, r] of runs) g.of(sut).rows.push(...routeRows(shape, r));
    }
  });
  return { name: "route", setup: ROUTE_SETUP, servers: g.servers() };
}

async function routeChurnScenario(
  o: BenchOptions,
  suts: ServerUnderTest[],
): Promise<ScenarioResult> {
  const g = new Gathered(suts);
  await withTemplates("route-churn", g, churnAccountSetup(o.concurrency), async (templates) => {
    const runs = await interleave(
      "route-churn",
      g,
      templates,
      o.runs,
      (sut, t) => runRouteChurn(sut, t, o.messages, o.churn, o.concurrency),
      describeChurnRun,
    );
    for (const [sut, r] of runs) g.of(sut).rows.push(...churnRows(r, o.churn));
  });
  return { name: "route-churn", setup: churnSetup(o.churn), servers: g.servers() };
}

async function presenceScenario(
  o: BenchOptions,
  suts: ServerUnderTest[],
): Promise<ScenarioResult> {
  const g = new Gathered(suts);
  const setup = presenceSetup(o.contacts, o.concurrency);
  await withTemplates("presence", g, setup, async (templates) => {
    const runs = await interleave(
      "presence",
      g,
      templates,
      o.runs,
      (sut, t) => runPresence(sut, t, o.contacts, o.broadcasts, o.concurrency),
      describePresenceRun,
    );
    for (const [sut, r] of runs) g.of(sut).rows.push(...presenceRows(r, o.contacts));
  });
  return { name: "presence", setup: PRESENCE_SETUP, servers: g.servers() };
}

/** Says whether Cadence's abuse limits were on, for flood and idle-unauth. */
function limitsNote(o: BenchOptions): string {
  return o.noLimits
    ? `; Cadence with --no-limits (${JSON.stringify(NO_LIMITS)})`
    : "; Cadence with its default limits (inbound rate limit, 32 unauthenticated per address)";
}

async function pepScenario(o: BenchOptions, suts: ServerUnderTest[]): Promise<ScenarioResult> {
  const g = new Gathered(suts);
  const setup = pepSetup(o.contacts, o.concurrency);
  await withTemplates("pep", g, setup, async (templates) => {
    const runs = await interleave(
      "pep",
      g,
      templates,
      o.runs,
      (sut, t) => runPep(sut, t, o.contacts, o.broadcasts, o.concurrency),
      describePepRun,
    );
    for (const [sut, r] of runs) g.of(sut).rows.push(...pepRows(r, o.contacts));
  });
  return { name: "pep", setup: PEP_SETUP, servers: g.servers() };
}

/** Two Cadence processes federating (the peers' federation is not measured). */
async function s2sScenario(o: BenchOptions, suts: ServerUnderTest[]): Promise<ScenarioResult> {
  const cadence = suts.filter((s) => s.name === "Cadence");
  const g = new Gathered(cadence);
  const pairs = 20, window = 10;
  for (const sut of cadence) {
    const runs: S2sRun[] = [];
    for (let i = 1; i <= o.runs; i++) {
      try {
        const r = await runS2s(pairs, o.messages, window);
        log(`s2s run ${i}/${o.runs} Cadence: ${describeS2sRun(r)}`);
        runs.push(r);
        g.of(sut).errors.push(...r.errors);
      } catch (e) {
        g.fail(sut, `s2s run ${i}`, e);
      }
    }
    if (runs.length) g.of(sut).rows.push(...s2sRows(runs, pairs));
  }
  return {
    name: "s2s",
    setup: `${S2S_SETUP}; P=${pairs}, M=${o.messages} (--messages), W=${window}`,
    servers: g.servers(),
    note: "Cadence only: two Cadence processes federating",
  };
}

/** WebSocket, BOSH and HTTP upload on Cadence (the peers' web transports are not measured). */
async function webScenario(o: BenchOptions, suts: ServerUnderTest[]): Promise<ScenarioResult> {
  const cadence = suts.filter((s) => s.name === "Cadence");
  const g = new Gathered(cadence);
  try {
    // Each session is a socket on both sides, as is each BOSH session's held request.
    await checkFileLimit(2 * o.webSessions + 4 * WEB_PAIRS);
    await withTemplates("web", g, webSetup(o.webSessions), async (templates) => {
      for (const [sut, template] of templates) {
        const runs: WebRun[] = [];
        for (let i = 1; i <= o.runs; i++) {
          try {
            const r = await runWeb(template, o.webSessions, o.messages, o.uploadMb * 1e6);
            log(`web run ${i}/${o.runs} ${sut.name}: ${describeWebRun(r)}`);
            runs.push(r);
            g.of(sut).runs.push(r);
            g.of(sut).errors.push(...r.errors);
          } catch (e) {
            g.fail(sut, `web run ${i}`, e);
          }
        }
        if (runs.length) g.of(sut).rows.push(...webRows(runs));
      }
    });
  } catch (e) {
    for (const sut of cadence) g.fail(sut, "web", e);
  }
  return {
    name: "web",
    setup: `${WEB_SETUP}; N=${o.webSessions} (--web-sessions), P=${WEB_PAIRS}, ` +
      `M=${o.messages} (--messages), W=${WEB_WINDOW}, ${o.uploadMb} MB (--upload-mb)`,
    servers: g.servers(),
    note: "Cadence only",
  };
}

async function mucScenario(o: BenchOptions, suts: ServerUnderTest[]): Promise<ScenarioResult> {
  const g = new Gathered(suts);
  const setup = mucSetup(o.occupants, o.joins, o.concurrency);
  await withTemplates("muc", g, setup, async (templates) => {
    const runs = await interleave(
      "muc",
      g,
      templates,
      o.runs,
      (sut, t) => runMuc(sut, t, o.occupants, o.mucMessages, o.joins, o.concurrency),
      describeMucRun,
    );
    for (const [sut, r] of runs) g.of(sut).rows.push(...mucRows(r, o.occupants));
  });
  return { name: "muc", setup: MUC_SETUP, servers: g.servers() };
}

async function floodScenario(o: BenchOptions, suts: ServerUnderTest[]): Promise<ScenarioResult> {
  const g = new Gathered(suts);
  const shape = {
    messages: o.floodMessages,
    bodyBytes: o.floodBody,
    limitSeconds: o.floodSeconds,
  };
  await withTemplates("flood", g, floodSetup(o.concurrency, o.noLimits), async (templates) => {
    const runs = await interleave(
      "flood",
      g,
      templates,
      o.runs,
      (sut, t) => runFlood(sut, t, shape, o.concurrency),
      describeFloodRun,
    );
    for (const [sut, r] of runs) g.of(sut).rows.push(...floodRows(r));
  });
  return { name: "flood", setup: floodDescription(shape) + limitsNote(o), servers: g.servers() };
}

async function unauthScenario(o: BenchOptions, suts: ServerUnderTest[]): Promise<ScenarioResult> {
  const g = new Gathered(suts);
  try {
    await checkFileLimit(o.unauth);
    await withTemplates(
      "idle-unauth",
      g,
      unauthSetup(o.concurrency, o.noLimits),
      async (templates) => {
        const runs = await interleave(
          "idle-unauth",
          g,
          templates,
          o.runs,
          (sut, t) => runIdleUnauth(sut, t, o.unauth, o.concurrency, o.holdSeconds),
          describeUnauthRun,
        );
        for (const [sut, r] of runs) g.of(sut).rows.push(...unauthRows(r, o.unauth));
      },
    );
  } catch (e) {
    for (const sut of suts) g.fail(sut, "idle-unauth", e);
  }
  return { name: "idle-unauth", setup: UNAUTH_SETUP + limitsNote(o), servers: g.servers() };
}

/**
 * Stream management, the archive and FAST. The peers (with `--peers`) run
 * only mam-write, with their own mod_mam; the rest is Cadence only.
 */
async function mobileScenario(o: BenchOptions, suts: ServerUnderTest[]): Promise<ScenarioResult> {
  const g = new Gathered(suts);
  const runs: MobileRun[] = [];
  const peerRuns = new Map<ServerUnderTest, ArchiveCost[]>();
  for (let run = 1; run <= o.runs; run++) {
    try {
      runs.push(await runMobile((line) => log(`mobile run ${run}/${o.runs}: ${line}`)));
    } catch (e) {
      g.fail(CADENCE, `mobile run ${run}`, e);
    }
    for (const sut of suts.filter((s) => s !== CADENCE)) {
      try {
        const cost = await archiveCost(sut);
        log(
          `mobile run ${run}/${o.runs}: ${sut.name} mam-write: ${cost.routeCpuUs.toFixed(1)} ` +
            `µs/msg without the archive, ${cost.routeMamCpuUs.toFixed(1)} with it`,
        );
        peerRuns.set(sut, [...(peerRuns.get(sut) ?? []), cost]);
      } catch (e) {
        g.fail(sut, `mobile run ${run}`, e);
      }
    }
  }
  g.of(CADENCE).runs.push(...runs);
  g.of(CADENCE).rows.push(...mobileRows(runs));
  for (const r of runs) g.of(CADENCE).errors.push(...r.notes);
  for (const [sut, costs] of peerRuns) {
    g.of(sut).runs.push(...costs);
    g.of(sut).rows.push(...archiveCostRows(costs));
  }
  return {
    name: "mobile",
    setup: MOBILE_SETUP,
    servers: g.servers(),
    note: "the peers run mam-write only (Prosody's mod_mam on its file storage, ejabberd's " +
      "mod_mam with default: always on Mnesia); the rest is Cadence only",
  };
}

/** A fixed CPU-bound workload: 200,000 SHA-256 digests of 64 bytes (node:crypto). */
function speedIndex(): { ms: number; opsPerSecond: number; digests: number } {
  const digests = 200_000;
  const input = new Uint8Array(64).fill(7);
  // Warm up long enough for the JIT to settle (5,000 was too few: the first reading came
  // out up to 2× slower than one at the end of the same run on an idle machine).
  for (let i = 0; i < 50_000; i++) createHash("sha256").update(input).digest();
  const t0 = performance.now();
  for (let i = 0; i < digests; i++) createHash("sha256").update(input).digest();
  const ms = performance.now() - t0;
  return { ms, opsPerSecond: digests / (ms / 1000), digests };
}

function describeSpeed(s: { ms: number; opsPerSecond: number }): string {
  return `${s.ms.toFixed(0)} ms (${(s.opsPerSecond / 1000).toFixed(0)}k digests/s)`;
}

/** A shell-quoted argument. */
function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** The servers to measure: Cadence, and with --peers each installed peer. */
async function chooseServers(o: BenchOptions): Promise<{
  suts: ServerUnderTest[];
  infos: ServerInfo[];
}> {
  const candidates = o.peers ? [CADENCE, PROSODY_SUT, EJABBERD_SUT] : [CADENCE];
  const suts: ServerUnderTest[] = [];
  const infos: ServerInfo[] = [];
  for (const sut of candidates) {
    const missing = await sut.missing();
    const modules = sut.modules();
    if (missing) {
      console.log(`${sut.name} skipped: ${missing}`);
      log(`${sut.name} skipped: ${missing}`);
      infos.push({
        name: sut.name,
        version: "not installed",
        modules: [],
        modulesNote: "",
        skipped: missing,
      });
      continue;
    }
    suts.push(sut);
    infos.push({
      name: sut.name,
      version: await sut.version(),
      modules: modules.list,
      modulesNote: modules.note,
    });
  }
  return { suts, infos };
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
  const t0 = performance.now();
  const speedAtStart = speedIndex();
  const commandLine = ["deno", "task", "bench", ...Deno.args].map(quote).join(" ");
  const machine = {
    cpus: navigator.hardwareConcurrency,
    loadavg: Deno.loadavg(),
    deno: Deno.version.deno,
    clockTicks: await clockTicksPerSecond(),
    openFileLimit: await openFileLimit(),
    server: serverRoot(),
    git: await gitState(serverRoot()),
    speedIndexAtStart: speedAtStart,
  };
  log(`${commandLine}; options ${JSON.stringify(options)}; machine ${JSON.stringify(machine)}`);
  const { suts, infos } = await chooseServers(options);
  const results: ScenarioResult[] = [];
  try {
    for (const name of options.only) {
      if (name === "login-plain") results.push(await loginScenario(LOGIN_PLAIN, options, suts));
      if (name === "login-scram") results.push(await loginScenario(LOGIN_SCRAM, options, suts));
      if (name === "idle-memory") results.push(await idleScenario(options, suts));
      if (name === "route") results.push(await routeScenario(options, suts));
      if (name === "route-churn") results.push(await routeChurnScenario(options, suts));
      if (name === "presence") results.push(await presenceScenario(options, suts));
      if (name === "flood") results.push(await floodScenario(options, suts));
      if (name === "idle-unauth") results.push(await unauthScenario(options, suts));
      if (name === "mobile") results.push(await mobileScenario(options, suts));
      if (name === "pep") results.push(await pepScenario(options, suts));
      if (name === "muc") results.push(await mucScenario(options, suts));
      if (name === "s2s") results.push(await s2sScenario(options, suts));
      if (name === "web") results.push(await webScenario(options, suts));
    }
  } finally {
    await ServerProcess.stopAll();
  }
  const speedAtEnd = speedIndex();
  const wallMs = performance.now() - t0;
  const git = machine.git;
  const tree = git.dirty ? `dirty: ${git.changed.length} changed tracked file(s)` : "clean";
  console.log(
    `\nCadence benchmark${options.peers ? " with peers" : ""} — ${commandLine}\n` +
      `${options.runs} fresh-server run(s) per scenario and server, ` +
      `${options.concurrency} concurrent clients, ${options.logins} logins per login run, ` +
      `${options.sessions} idle sessions held ${options.holdSeconds} s, ` +
      `${options.messages} messages per sender, ${options.churn} churn logins, ` +
      `${options.broadcasts} status changes to ${options.contacts} contacts, ` +
      `${options.unauth} unauthenticated connections, ${options.occupants} room occupants ` +
      `with ${options.mucMessages} messages and ${options.joins} joins.\n` +
      `Machine: ${machine.cpus} CPUs, load average at start ` +
      `${machine.loadavg.map((l) => l.toFixed(2)).join(" ")}, Deno ${machine.deno}; CPU speed ` +
      `index (200,000 SHA-256 digests of 64 bytes, node:crypto): start ` +
      `${describeSpeed(speedAtStart)}, end ${describeSpeed(speedAtEnd)}.\n` +
      `Cadence: ${machine.server} at commit ${git.commit} (tree ${tree}).\n` +
      `Wall time of the whole run: ${seconds(wallMs)}.`,
  );
  console.log("Servers:");
  for (const i of infos) {
    if (i.skipped) console.log(`  ${i.name}: SKIPPED — ${i.skipped}`);
    else {console.log(
        `  ${i.name}: ${i.version}\n    modules: ${i.modules.join(", ")}\n    ${i.modulesNote}`,
      );}
  }
  console.log("");
  const rows: TableRow[] = results.flatMap((r) => mergeRows(r.servers));
  console.log(options.peers ? renderPeerTable(rows) : renderTable(rows));
  if (options.peers) {
    console.log(
      "Ratios are Cadence's median ÷ the peer's median, from this run. For CPU, memory, " +
        "latency and failures lower is better (a ratio below 1 favours Cadence); for rates " +
        'higher is better (column "better").',
    );
  }
  console.log("\nSetup:");
  for (const r of results) {
    const failed = r.servers.flatMap((s) =>
      s.errors.map((e) => `${s.server}: ${e.split("\n")[0]}`)
    );
    console.log(`  ${r.name}: ${r.setup}${r.note ? ` — ${r.note}` : ""}`);
    for (const f of failed) console.log(`    FAILED ${f}`);
  }
  console.log(
    "Server CPU = utime+stime+cutime+cstime of the server's whole process tree " +
      `(/proc/PID/stat of the main process and its descendants, ${machine.clockTicks} ticks/s), ` +
      "sampled around the measured phase; RSS = VmRSS of the same tree. Each server is " +
      "started fresh per run and given time to settle (until a 1 s window with ≤ 20 ms CPU " +
      "and ≤ 256 KiB RSS change, at most 30 s) before its warm-up" +
      (options.peers ? "." : "; anchors from shared/reference/benchmarking.md."),
  );
  const file = await writeSummary(started, {
    commandLine,
    argv: [Deno.execPath(), "run", "-A", "bench/run.ts", ...Deno.args],
    options,
    machine: { ...machine, speedIndexAtEnd: speedAtEnd },
    wallSeconds: wallMs / 1000,
    servers: infos,
    results,
    table: rows,
  });
  console.log(`\nJSON summary: ${file}`);
  return results.some((r) => r.servers.some((s) => s.errors.length > 0)) ? 1 : 0;
}

/** The commit a checkout is at (read-only git), and whether its tracked files differ. */
async function gitState(dir: string): Promise<{
  commit: string;
  dirty: boolean;
  changed: string[];
  untracked: number;
}> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", {
      args: ["--no-optional-locks", "-C", dir, ...args],
      stdout: "piped",
      stderr: "null",
    })
      .output().catch(() => undefined);
    return out?.success ? new TextDecoder().decode(out.stdout).trimEnd() : undefined;
  };
  const commit = (await git("rev-parse", "HEAD")) ?? "unknown commit";
  const changed = ((await git("status", "--porcelain", "--untracked-files=no")) ?? "")
    .split("\n").filter((l) => l.trim());
  const untracked = ((await git("status", "--porcelain", "--untracked-files=normal")) ?? "")
    .split("\n").filter((l) => l.startsWith("??")).length;
  return { commit, dirty: changed.length > 0 || untracked > 0, changed, untracked };
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
  // Whatever ends the bench, no server it started (Cadence, Prosody, beam.smp and its
  // helpers) and no temporary directory may outlive it.
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.addSignalListener(signal, async () => {
      log(`${signal}: stopping servers and removing their directories`);
      await ServerProcess.stopAll();
      Deno.exit(code);
    });
  }
  globalThis.addEventListener("unhandledrejection", async (e) => {
    e.preventDefault();
    log(`unhandled rejection: ${(e.reason as Error)?.stack ?? e.reason}; stopping servers`);
    await ServerProcess.stopAll();
    Deno.exit(1);
  });
  try {
    Deno.exit(await main());
  } catch (e) {
    log(`failed: ${(e as Error)?.stack ?? e}; stopping servers`);
    await ServerProcess.stopAll();
    Deno.exit(1);
  }
}
