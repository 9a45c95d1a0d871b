/**
 * Multi-user chat (XEP-0045) on conference.localhost, two measured phases
 * on one fresh server per run:
 *
 * - fan-out: N occupants join room `bench@conference.localhost` (the first
 *   creates it and configures it with an empty owner form, which unlocks
 *   it, and sets its subject), then one of them sends K groupchat messages
 *   one at a time: each is sent once every occupant, the sender included
 *   (its echo), has the previous one. Reports server CPU per delivery
 *   (messages × occupants) and the time until the last occupant has a
 *   message.
 * - join: with the room holding those N occupants and its history full,
 *   J more users (logged in before measuring) join one at a time asking for
 *   `<history maxstanzas='20'/>`; a join is complete once the joiner has its
 *   own presence (status code 110), the 20 history messages and the
 *   subject. Each join also sends the joiner the presence of every occupant
 *   and broadcasts its presence to all of them: that is part of the cost.
 *   Reports server CPU per join and the join time.
 *
 * Every occupant reads everything it is sent (the presence floods of the
 * joins included), so no server output buffer fills.
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
import { cpuMs, treeSystemMs } from "../proc.ts";
import { details, type Row, row } from "../report.ts";
import { closeAll } from "../route_measure.ts";
import {
  type AccountSetup,
  MUC_HOST,
  numbered,
  type ServerUnderTest,
  type Template,
} from "../servers.ts";
import { percentile } from "../stats.ts";
import { isErrorStanza, openingTag, StanzaScanner } from "../stanza_scanner.ts";
import { openSession } from "../xmpp_steps.ts";
import { Deliveries } from "./presence.ts";

/** The figures of one measured run. */
export interface MucRun {
  occupants: number;
  /** Groupchat messages sent in the measured fan-out phase. */
  messages: number;
  /** Of those, the ones every occupant got in time. */
  completed: number;
  /** Deliveries of measured messages to occupants (should be occupants × messages). */
  delivered: number;
  fanoutCpuMs: number;
  /** Server CPU per message delivered to one occupant, µs. */
  cpuUsPerDelivery: number;
  /** Of that, the kernel's (system) time, µs. */
  systemUsPerDelivery: number;
  /** Server CPU per message delivered to every occupant, µs. */
  cpuUsPerMessage: number;
  lastOccupantP50Ms: number;
  lastOccupantP99Ms: number;
  /** Joins started in the measured join phase. */
  joins: number;
  /** Of those, the ones complete in time (own presence, 20 history messages, subject). */
  joinsCompleted: number;
  joinCpuMs: number;
  /** Server CPU per complete join, µs. */
  cpuUsPerJoin: number;
  joinP50Ms: number;
  joinP99Ms: number;
  /** Joins whose subject came before all 20 history messages (XEP-0045 sends it last). */
  subjectBeforeHistory: number;
  /** Presence stanzas the occupants and joiners read over the whole run. */
  presencesRead: number;
  /** The load generator's own CPU over the two measured phases (this process). */
  generatorCpuMs: number;
  errors: string[];
  closeFailed: number;
  exitCode: number;
  /** The end of what the server printed (warnings and errors only). */
  serverOutput: string;
}

/** The room, its occupants' and joiners' account prefixes. */
export const ROOM = `bench@${MUC_HOST}`;
export const OCCUPANT_PREFIX = "muc-o";
export const JOINER_PREFIX = "muc-j";
/** Unmeasured messages before the fan-out phase (they also fill the history). */
const WARM_MESSAGES = 20;
/** History messages a joiner asks for (and the room keeps: every server's default). */
const HISTORY = 20;
const SUBJECT = "bench";
/** Limit for one message to reach every occupant. */
const MESSAGE_TIMEOUT_MS = 10_000;
/** Limit for one occupant's join (including a queue of presence broadcasts ahead of it). */
const JOIN_TIMEOUT_MS = 60_000;
/** Pause after the joins, so that their presence broadcasts are over before measuring. */
const AFTER_JOINS_MS = 1_000;
/** Time given to the server after the last delivery before the final CPU sample. */
const SETTLE_MS = 250;
const BODY = /<body>(\d+)<\/body>/;
const SELF = /<status [^>]*code=["']110["']/;
const MUC = "http://jabber.org/protocol/muc";

/** How the scenario was set up, for the report. */
export const MUC_SETUP = `${OPEN_SETUP}; room ${ROOM}, created by the first occupant (join ` +
  `with <x xmlns='${MUC}'><history maxstanzas='0'/></x>), configured with an empty owner ` +
  "form (which unlocks it) and given a subject; the other occupants join " +
  "concurrently; fan-out: one occupant sends one groupchat message at a time, the next " +
  "once every occupant (the sender's echo included) has it, " +
  `after ${WARM_MESSAGES} unmeasured ones; join: users logged in beforehand join one at a ` +
  `time with <history maxstanzas='${HISTORY}'/>, complete with their own presence (110), ` +
  `${HISTORY} history messages and the subject; each join also sends the joiner every ` +
  "occupant's presence and broadcasts its own to every occupant (part of the cost); " +
  `history ${HISTORY} messages on every server (Cadence and Prosody: max_history_messages ` +
  "and muc_room_default_history_length 20; ejabberd: mod_muc history_size 20), no room " +
  "archive (Cadence: muc_mam disabled; Prosody: mod_muc_mam not loaded; ejabberd: " +
  "mam: false), no MUC rate limit or shaper, non-persistent room; XEP-0421 occupant ids " +
  "from Cadence and Prosody (their default), none from ejabberd 23.01 (which has no " +
  "support); ejabberd: max_users and max_users_presence raised from 200 and 1000, and " +
  "its room also sends each joiner a caps presence of its own";

/** The accounts: the warm-up's, the occupants', the joiners'. */
export function mucSetup(occupants: number, joins: number, concurrency: number): AccountSetup {
  return {
    accounts: [
      ...warmAccounts(concurrency),
      ...numbered(OCCUPANT_PREFIX, occupants),
      ...numbered(JOINER_PREFIX, joins),
    ],
    muc: true,
  };
}

/** The join presence for nick `nick`, asking for `history` messages of history. */
function join(nick: string, history: number): string {
  return `<presence to='${ROOM}/${nick}'><x xmlns='${MUC}'>` +
    `<history maxstanzas='${history}'/></x></presence>`;
}

/** The n-th groupchat message. */
function groupchat(n: number): string {
  return `<message type='groupchat' to='${ROOM}' id='m${n}'><body>${n}</body></message>`;
}

/**
 * A session in the room: reads everything the server sends it, counts
 * presences, notices its own presence (status 110) or a join error, and
 * hands messages to whoever listens in the current phase.
 */
class Occupant {
  presences = 0;
  /** Called for every complete `<message>` received. */
  onMessage: (stanza: string) => void = () => {};
  /** Called with all text received, when set (for stanzas the scanners do not see). */
  onRaw: ((text: string) => void) | undefined;
  private joined: { resolve: (at: number) => void; reject: (e: Error) => void } | undefined;

  constructor(readonly conn: BenchConnection, readonly nick: string) {
    const presences = new StanzaScanner("presence", (p) => {
      this.presences++;
      if (!this.joined) return;
      if (isErrorStanza(p) && openingTag(p).includes(`${ROOM}/${nick}`)) {
        this.joined.reject(new Error(`join of ${nick} refused: ${p.slice(0, 400)}`));
        this.joined = undefined;
      } else if (SELF.test(p)) {
        this.joined.resolve(performance.now());
        this.joined = undefined;
      }
    });
    const messages = new StanzaScanner("message", (m) => this.onMessage(m));
    conn.onText((text) => {
      presences.push(text);
      messages.push(text);
      this.onRaw?.(text);
    });
  }

  /** Sends the join presence; resolves with the time its own presence (110) arrives. */
  join(history: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.joined = undefined;
        reject(new Error(`${this.nick}: no own presence (110) within ${timeoutMs} ms`));
      }, timeoutMs);
      this.joined = {
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.conn.send(join(this.nick, history));
    });
  }
}

/** Logs in `username` and wraps its session; `conns` collects it for closing. */
async function occupant(
  port: number,
  i: number,
  username: string,
  conns: BenchConnection[],
): Promise<Occupant> {
  const c = await openSession(target(port, i), { username, password: "any" }, "muc", OPEN_MODE);
  conns.push(c);
  return new Occupant(c, username);
}

/**
 * Creates and configures the room as its first occupant: join, then the
 * owner's empty form (an instant room: unlocked), then the subject.
 */
async function createRoom(owner: Occupant): Promise<void> {
  await owner.join(0, JOIN_TIMEOUT_MS);
  // The answer may be a self-closing <iq/>, which no StanzaScanner sees: match its tag.
  let text = "";
  const answer = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("no answer to the owner's configuration form")),
      MESSAGE_TIMEOUT_MS,
    );
    owner.onRaw = (chunk) => {
      text += chunk;
      const m = /<iq\b[^>]*\bid=["']muc-config["'][^>]*>/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    };
  }).finally(() => owner.onRaw = undefined);
  owner.conn.send(
    `<iq type='set' id='muc-config' to='${ROOM}'><query xmlns='${MUC}#owner'>` +
      "<x xmlns='jabber:x:data' type='submit'/></query></iq>",
  );
  const tag = await answer;
  if (!/type=["']result["']/.test(tag)) {
    throw new Error(`the room's configuration was refused: ${text.slice(0, 400)}`);
  }
  const subject = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("the subject did not come back to its sender")),
      MESSAGE_TIMEOUT_MS,
    );
    owner.onMessage = (m) => {
      if (m.includes(`<subject>${SUBJECT}</subject>`)) {
        clearTimeout(timer);
        resolve();
      } else if (isErrorStanza(m)) {
        clearTimeout(timer);
        reject(new Error(`setting the subject failed: ${m.slice(0, 400)}`));
      }
    };
  }).finally(() => owner.onMessage = () => {});
  owner.conn.send(
    `<message type='groupchat' to='${ROOM}'><subject>${SUBJECT}</subject></message>`,
  );
  await subject;
}

/** One measured run on a fresh server whose data is copied from `template`. */
export async function runMuc(
  sut: ServerUnderTest,
  template: Template,
  occupants: number,
  messages: number,
  joins: number,
  concurrency: number,
): Promise<MucRun> {
  const server = await sut.start(template);
  const conns: BenchConnection[] = [];
  try {
    await warmUp(server.port, concurrency);
    const owner = await occupant(server.port, 0, `${OCCUPANT_PREFIX}0`, conns);
    await createRoom(owner);
    const members: Occupant[] = [owner];
    const joined = await runPool(occupants - 1, concurrency, PHASE_LIMIT_MS, async (i) => {
      const o = await occupant(server.port, i + 1, `${OCCUPANT_PREFIX}${i + 1}`, conns);
      await o.join(0, JOIN_TIMEOUT_MS);
      members.push(o);
    });
    if (joined.failed > 0) {
      throw new Error(`${joined.failed} occupants failed to join: ${joined.errors[0]}`);
    }
    // The joiners log in now, so that the join phase measures joins only.
    const joiners: Occupant[] = [];
    const loggedIn = await runPool(joins, concurrency, PHASE_LIMIT_MS, async (i) => {
      const j = await occupant(server.port, occupants + i, `${JOINER_PREFIX}${i}`, conns);
      joiners.push(j);
    });
    if (loggedIn.failed > 0) {
      throw new Error(`${loggedIn.failed} joiners failed to log in: ${loggedIn.errors[0]}`);
    }
    joiners.sort((a, b) => a.nick.localeCompare(b.nick, "en", { numeric: true }));
    await new Promise((resolve) => setTimeout(resolve, AFTER_JOINS_MS));

    // Fan-out.
    const deliveries = new Deliveries(WARM_MESSAGES + messages, occupants);
    for (const o of members) {
      o.onMessage = (m) => {
        const hit = BODY.exec(m);
        if (hit) deliveries.got(Number(hit[1]));
      };
    }
    const one = async (n: number) => {
      const sentAt = performance.now();
      owner.conn.send(groupchat(n));
      return (await deliveries.all(n, MESSAGE_TIMEOUT_MS)) - sentAt;
    };
    for (let n = 0; n < WARM_MESSAGES; n++) await one(n);
    const warmDelivered = deliveries.total;
    const times: number[] = [];
    const errors: string[] = [];
    let sent = 0;
    const ownBefore = await cpuMs(Deno.pid);
    const systemBefore = await treeSystemMs(server.pid);
    let cpuBefore = await server.cpuMs();
    for (let n = WARM_MESSAGES; n < WARM_MESSAGES + messages; n++) {
      sent++;
      try {
        times.push(await one(n));
      } catch (e) {
        errors.push((e as Error).message);
        break;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const fanoutCpuMs = (await server.cpuMs()) - cpuBefore;
    // The kernel's part (sending to the sockets, mostly): what no server code can shave.
    const fanoutSystemMs = (await treeSystemMs(server.pid)) - systemBefore;
    const delivered = deliveries.total - warmDelivered;
    for (const o of members) o.onMessage = () => {};

    // Joins, one at a time, into a room with a full history.
    const joinTimes: number[] = [];
    let subjectBeforeHistory = 0;
    let started = 0;
    cpuBefore = await server.cpuMs();
    for (const j of joiners) {
      started++;
      try {
        joinTimes.push(await joinWithHistory(j, () => subjectBeforeHistory++));
      } catch (e) {
        errors.push((e as Error).message);
        break;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const joinCpuMs = (await server.cpuMs()) - cpuBefore;
    const generatorCpuMs = (await cpuMs(Deno.pid)) - ownBefore;
    if (subjectBeforeHistory > 0) {
      errors.push(`${subjectBeforeHistory} joins got the subject before all the history`);
    }
    const presencesRead = [...members, ...joiners].reduce((sum, o) => sum + o.presences, 0);
    const closeFailed = await closeAll(conns);
    return {
      occupants,
      messages: sent,
      completed: times.length,
      delivered,
      fanoutCpuMs,
      cpuUsPerDelivery: delivered > 0 ? fanoutCpuMs * 1000 / delivered : NaN,
      systemUsPerDelivery: delivered > 0 ? fanoutSystemMs * 1000 / delivered : NaN,
      cpuUsPerMessage: times.length > 0 ? fanoutCpuMs * 1000 / times.length : NaN,
      lastOccupantP50Ms: percentile(times, 50),
      lastOccupantP99Ms: percentile(times, 99),
      joins: started,
      joinsCompleted: joinTimes.length,
      joinCpuMs,
      cpuUsPerJoin: joinTimes.length > 0 ? joinCpuMs * 1000 / joinTimes.length : NaN,
      joinP50Ms: percentile(joinTimes, 50),
      joinP99Ms: percentile(joinTimes, 99),
      subjectBeforeHistory,
      presencesRead,
      generatorCpuMs,
      errors,
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

/**
 * One measured join: sends the join asking for {@link HISTORY} messages and
 * resolves with the time until the joiner has its own presence, the history
 * and the subject, whatever their order (`outOfOrder` is called when the
 * subject comes before all the history).
 */
async function joinWithHistory(j: Occupant, outOfOrder: () => void): Promise<number> {
  let history = 0;
  let subject = false;
  let done: (() => void) | undefined;
  const complete = new Promise<void>((resolve) => done = resolve);
  j.onMessage = (m) => {
    if (m.includes("<body>")) history++;
    else if (m.includes("<subject")) {
      subject = true;
      if (history < HISTORY) outOfOrder();
    }
    if (subject && history >= HISTORY) done?.();
  };
  const sentAt = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `${j.nick}: join incomplete after ${JOIN_TIMEOUT_MS} ms (${history} of ${HISTORY} ` +
              `history messages, subject ${subject ? "" : "not "}received)`,
          ),
        ),
      JOIN_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([Promise.all([j.join(HISTORY, JOIN_TIMEOUT_MS), complete]), timeout]);
  } finally {
    clearTimeout(timer);
    j.onMessage = () => {};
  }
  return performance.now() - sentAt;
}

/** One log line (plus errors and server output) for a finished run. */
export function describeMucRun(r: MucRun): string {
  return `fan-out: ${r.completed}/${r.messages} messages to ${r.occupants} occupants, ` +
    `${r.delivered} of ${r.messages * r.occupants} deliveries; server CPU ` +
    `${(r.fanoutCpuMs / 1000).toFixed(2)} s = ${r.cpuUsPerDelivery.toFixed(1)} µs/delivery ` +
    `(kernel ${r.systemUsPerDelivery.toFixed(1)}) ` +
    `(${r.cpuUsPerMessage.toFixed(0)} µs/message); to the last occupant p50 ` +
    `${r.lastOccupantP50Ms.toFixed(2)} ms, p99 ${r.lastOccupantP99Ms.toFixed(2)} ms. ` +
    `join: ${r.joinsCompleted}/${r.joins} joins; server CPU ${(r.joinCpuMs / 1000).toFixed(2)} ` +
    `s = ${(r.cpuUsPerJoin / 1000).toFixed(2)} ms/join; join time p50 ` +
    `${r.joinP50Ms.toFixed(2)} ms, p99 ${r.joinP99Ms.toFixed(2)} ms. ${r.presencesRead} ` +
    `presences read; generator CPU ${(r.generatorCpuMs / 1000).toFixed(2)} s; ` +
    `${r.closeFailed} unclean closes, exit ${r.exitCode}` + details(r.errors, r.serverOutput);
}

/** The table rows for the MUC runs. */
export function mucRows(runs: MucRun[], occupants: number): Row[] {
  const name = `muc ${occupants} occupants`;
  return [
    row(name, "fan-out server CPU µs/delivery", runs.map((r) => r.cpuUsPerDelivery), 1),
    row(name, "  of which kernel (system) µs", runs.map((r) => r.systemUsPerDelivery), 1),
    row(name, "fan-out to last occupant p50 ms", runs.map((r) => r.lastOccupantP50Ms), 2),
    row(name, "fan-out to last occupant p99 ms", runs.map((r) => r.lastOccupantP99Ms), 2),
    row(
      name,
      "fan-out missing deliveries",
      runs.map((r) => r.messages * r.occupants - r.delivered),
      0,
    ),
    row(name, "join server CPU ms/join", runs.map((r) => r.cpuUsPerJoin / 1000), 2),
    row(name, "join time p50 ms", runs.map((r) => r.joinP50Ms), 2),
    row(name, "join time p99 ms", runs.map((r) => r.joinP99Ms), 2),
    row(name, "joins not completed", runs.map((r) => r.joins - r.joinsCompleted), 0),
  ];
}
