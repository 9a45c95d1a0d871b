/**
 * Presence broadcast: a user with N online contacts (mutual `both`
 * subscriptions, seeded into storage before the server starts; all N+1
 * sessions bound with initial presence) changes status K times, one change
 * at a time: each is sent once every contact has the previous one. Reports
 * server CPU per status change (delivered to all N contacts) and the time
 * from sending a change until the last contact has it.
 * @module
 */
import type { BenchConnection } from "../connection.ts";
import {
  OPEN_MODE,
  OPEN_SETUP,
  PHASE_LIMIT_MS,
  target,
  warmAccounts,
  warmUp,
} from "../open_logins.ts";
import { runPool } from "../pool.ts";
import { cpuMs } from "../proc.ts";
import { details, type Row, row } from "../report.ts";
import { closeAll } from "../route_measure.ts";
import { type AccountSetup, numbered, type ServerUnderTest, type Template } from "../servers.ts";
import { percentile } from "../stats.ts";
import { StanzaScanner } from "../stanza_scanner.ts";
import { openSession } from "../xmpp_steps.ts";

/** The figures of one measured run. */
export interface PresenceRun {
  contacts: number;
  /** Status changes sent in the measured phase. */
  broadcasts: number;
  /** Of those, the ones every contact got in time. */
  completed: number;
  /** Deliveries of measured status changes to contacts (should be contacts × broadcasts). */
  delivered: number;
  errors: string[];
  elapsedMs: number;
  serverCpuMs: number;
  /** Server CPU per status change delivered to every contact, µs. */
  cpuUsPerBroadcast: number;
  /** Server CPU per presence delivered to one contact, µs. */
  cpuUsPerDelivery: number;
  /** The load generator's own CPU over the measured phase (this process). */
  generatorCpuMs: number;
  lastContactP50Ms: number;
  lastContactP99Ms: number;
  closeFailed: number;
  exitCode: number;
  /** The end of what the server printed (warnings and errors only, at `log: "warn"`). */
  serverOutput: string;
}

/** The user whose status changes, and the prefix of its contacts' names. */
export const HUB = "pres-hub";
export const CONTACT_PREFIX = "pres-c";
const WARM_BROADCASTS = 20;
/** Limit for one status change to reach every contact. */
const BROADCAST_TIMEOUT_MS = 10_000;
/** Pause after opening the sessions, so the initial presence exchange is over. */
const AFTER_OPEN_MS = 1_000;
/** Time given to the server after the last delivery before the final CPU sample. */
const SETTLE_MS = 250;
const STATUS = /<status>(\d+)<\/status>/;

/** How the scenario was set up, for the report. */
export const PRESENCE_SETUP = `${OPEN_SETUP}; mutual subscriptions created before the runs ` +
  "(Cadence: its storage API; Prosody: roster files; ejabberd: add_rosteritem); status " +
  "changes alternate " +
  `<show>away</show> and <show>xa</show> with <status>n</status>; ${WARM_BROADCASTS} ` +
  "unmeasured changes first";

/** The n-th status change. */
function statusChange(n: number): string {
  return `<presence><show>${n % 2 === 0 ? "away" : "xa"}</show><status>${n}</status></presence>`;
}

/** The accounts and rosters: the warm-up's, the contacts', the hub's. */
export function presenceSetup(contacts: number, concurrency: number): AccountSetup {
  const people = numbered(CONTACT_PREFIX, contacts);
  return {
    accounts: [...warmAccounts(concurrency), ...people, { username: HUB, password: "any" }],
    rosters: { hub: HUB, contacts: people.map((p) => p.username) },
  };
}

/** Counts, per status number, the contacts that got it, and wakes whoever waits for all. */
export class Deliveries {
  readonly count: Uint32Array;
  total = 0;
  private waiting: { n: number; resolve: (at: number) => void } | undefined;

  constructor(statuses: number, private readonly contacts: number) {
    this.count = new Uint32Array(statuses);
  }

  /** A contact got status change `n`. */
  got(n: number): void {
    if (n >= this.count.length) return;
    this.total++;
    if (++this.count[n] === this.contacts && this.waiting?.n === n) {
      this.waiting.resolve(performance.now());
      this.waiting = undefined;
    }
  }

  /** Resolves with the time every contact had change `n`; rejects after `ms`. */
  all(n: number, ms: number): Promise<number> {
    if (this.count[n] >= this.contacts) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`status ${n} reached ${this.count[n]} of ${this.contacts} contacts`));
      }, ms);
      this.waiting = {
        n,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
    });
  }
}

/** One measured run on a fresh server whose data is copied from `template`. */
export async function runPresence(
  sut: ServerUnderTest,
  template: Template,
  contacts: number,
  broadcasts: number,
  concurrency: number,
): Promise<PresenceRun> {
  const server = await sut.start(template);
  const conns: BenchConnection[] = [];
  try {
    await warmUp(server.port, concurrency);
    const opened = await runPool(contacts, concurrency, PHASE_LIMIT_MS, async (i) => {
      const account = { username: `${CONTACT_PREFIX}${i}`, password: "any" };
      conns.push(await openSession(target(server.port, i), account, "pres", OPEN_MODE));
    });
    if (opened.failed > 0) throw new Error(`contacts failed to log in: ${opened.errors[0]}`);
    const account = { username: HUB, password: "any" };
    const hub = await openSession(target(server.port, contacts), account, "pres", OPEN_MODE);
    conns.push(hub);
    await new Promise((resolve) => setTimeout(resolve, AFTER_OPEN_MS));

    const deliveries = new Deliveries(WARM_BROADCASTS + broadcasts, contacts);
    for (const c of conns) {
      if (c === hub) continue;
      const scanner = new StanzaScanner("presence", (stanza) => {
        const m = STATUS.exec(stanza);
        if (m) deliveries.got(Number(m[1]));
      });
      c.onText((text) => scanner.push(text));
    }
    hub.onText(() => {}); // its own presence comes back too; not counted

    const change = async (n: number) => {
      const sentAt = performance.now();
      hub.send(statusChange(n));
      return (await deliveries.all(n, BROADCAST_TIMEOUT_MS)) - sentAt;
    };
    for (let n = 0; n < WARM_BROADCASTS; n++) await change(n);
    const warmDelivered = deliveries.total;

    const times: number[] = [];
    const errors: string[] = [];
    let sent = 0;
    const cpuBefore = await server.cpuMs();
    const ownBefore = await cpuMs(Deno.pid);
    const start = performance.now();
    for (let n = WARM_BROADCASTS; n < WARM_BROADCASTS + broadcasts; n++) {
      sent++;
      try {
        times.push(await change(n));
      } catch (e) {
        errors.push((e as Error).message);
        break;
      }
    }
    const elapsedMs = performance.now() - start;
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const serverCpuMs = (await server.cpuMs()) - cpuBefore;
    const generatorCpuMs = (await cpuMs(Deno.pid)) - ownBefore;
    const delivered = deliveries.total - warmDelivered;
    const closeFailed = await closeAll(conns);
    return {
      contacts,
      broadcasts: sent,
      completed: times.length,
      delivered,
      errors,
      elapsedMs,
      serverCpuMs,
      cpuUsPerBroadcast: times.length > 0 ? serverCpuMs * 1000 / times.length : NaN,
      cpuUsPerDelivery: delivered > 0 ? serverCpuMs * 1000 / delivered : NaN,
      generatorCpuMs,
      lastContactP50Ms: percentile(times, 50),
      lastContactP99Ms: percentile(times, 99),
      closeFailed,
      exitCode: await server.stop(),
      serverOutput: server.output().slice(-2000),
    };
  } catch (e) {
    for (const c of conns) c.destroy();
    await server.stop();
    throw new Error(`${(e as Error).message}\nserver output:\n${server.output()}`);
  }
}

/** One log line (plus errors and server output) for a finished run. */
export function describePresenceRun(r: PresenceRun): string {
  return `${r.completed}/${r.broadcasts} status changes to ${r.contacts} contacts, ` +
    `${r.delivered} of ` +
    `${r.broadcasts * r.contacts} deliveries, in ${(r.elapsedMs / 1000).toFixed(2)} s; ` +
    `server CPU ${(r.serverCpuMs / 1000).toFixed(2)} s = ${r.cpuUsPerBroadcast.toFixed(0)} ` +
    `µs/change = ${r.cpuUsPerDelivery.toFixed(1)} µs/delivery ` +
    `(generator ${(r.generatorCpuMs / 1000).toFixed(2)} s); until the last contact has it: ` +
    `p50 ${r.lastContactP50Ms.toFixed(2)} ms, p99 ${r.lastContactP99Ms.toFixed(2)} ms; ` +
    `${r.closeFailed} unclean closes, exit ${r.exitCode}` + details(r.errors, r.serverOutput);
}

/** The table rows for the presence runs. */
export function presenceRows(runs: PresenceRun[], contacts: number): Row[] {
  const name = `presence ${contacts} contacts`;
  return [
    row(name, "server CPU µs/status change", runs.map((r) => r.cpuUsPerBroadcast), 0),
    row(name, "server CPU µs/delivery", runs.map((r) => r.cpuUsPerDelivery), 1),
    row(name, "to last contact p50 ms", runs.map((r) => r.lastContactP50Ms), 2),
    row(name, "to last contact p99 ms", runs.map((r) => r.lastContactP99Ms), 2),
    row(
      name,
      "missing deliveries",
      runs.map((r) => r.broadcasts * r.contacts - r.delivered),
      0,
    ),
  ];
}
