/**
 * PEP notifications: a user with N online contacts (mutual subscriptions),
 * each of whose clients shows interest in a node through its entity
 * capabilities (`<node>+notify`), publishes K items one at a time: each is
 * published once every contact has the previous one. Reports server CPU per
 * notification delivered and the time until the last contact has an item.
 * @module
 */
import type { BenchConnection } from "../connection.ts";
import { OPEN_MODE, OPEN_SETUP, PHASE_LIMIT_MS, target, warmUp } from "../open_logins.ts";
import { runPool } from "../pool.ts";
import { details, type Row, row } from "../report.ts";
import { closeAll } from "../route_measure.ts";
import type { AccountSetup, ServerUnderTest, Template } from "../servers.ts";
import { percentile } from "../stats.ts";
import { StanzaScanner } from "../stanza_scanner.ts";
import { openSession } from "../xmpp_steps.ts";
import { CONTACT_PREFIX, Deliveries, HUB, presenceSetup } from "./presence.ts";
import { capsVer } from "../../core/xml/caps.ts";
import { parseXml } from "../../core/xml/parser.ts";

export interface PepRun {
  contacts: number;
  publishes: number;
  completed: number;
  delivered: number;
  errors: string[];
  serverCpuMs: number;
  cpuUsPerNotification: number;
  lastContactP50Ms: number;
  lastContactP99Ms: number;
  closeFailed: number;
  exitCode: number;
  serverOutput: string;
}

const NODE = "http://jabber.org/protocol/tune";
const WARM = 20;
const TIMEOUT_MS = 10_000;
/** Time for the contacts' capabilities to be asked for and known. */
const AFTER_CAPS_MS = 2_000;
const ITEM = /<item [^>]*id=["'](\d+)["']/;
const DISCO = "http://jabber.org/protocol/disco#info";
const FEATURES = [DISCO, "http://jabber.org/protocol/caps", NODE + "+notify"];

export const PEP_SETUP = `${OPEN_SETUP}; mutual subscriptions created before the runs; every ` +
  `contact's presence carries entity capabilities (XEP-0115) with ${NODE}+notify and answers ` +
  `the server's disco#info; the hub publishes one item at a time to ${NODE}; ${WARM} ` +
  "unmeasured publishes first; Cadence and Prosody with their pep module";

/** The accounts: the presence scenario's, with PEP on. */
export function pepSetup(contacts: number, concurrency: number): AccountSetup {
  return { ...presenceSetup(contacts, concurrency), pep: true };
}

function publish(n: number): string {
  return `<iq type='set' id='pub${n}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>` +
    `<publish node='${NODE}'><item id='${n}'><tune xmlns='${NODE}'><title>${n}</title></tune>` +
    "</item></publish></pubsub></iq>";
}

export async function runPep(
  sut: ServerUnderTest,
  template: Template,
  contacts: number,
  publishes: number,
  concurrency: number,
): Promise<PepRun> {
  const query = parseXml(
    `<query xmlns='${DISCO}'><identity category='client' type='pc' name='bench'/>` +
      FEATURES.map((f) => `<feature var='${f}'/>`).join("") + "</query>",
  );
  const ver = await capsVer(query);
  const features = query.children.map((c) => c.toString()).join("");
  const server = await sut.start(template);
  const conns: BenchConnection[] = [];
  try {
    await warmUp(server.port, concurrency);
    const deliveries = new Deliveries(WARM + publishes, contacts);
    const opened = await runPool(contacts, concurrency, PHASE_LIMIT_MS, async (i) => {
      const account = { username: `${CONTACT_PREFIX}${i}`, password: "any" };
      const c = await openSession(target(server.port, i), account, "pep", OPEN_MODE);
      const messages = new StanzaScanner("message", (m) => {
        const hit = ITEM.exec(m);
        if (hit) deliveries.got(Number(hit[1]));
      });
      const iqs = new StanzaScanner("iq", (iq) => {
        if (!iq.includes(DISCO) || !/type=["']get["']/.test(iq)) return;
        const id = /id=["']([^"']+)["']/.exec(iq)?.[1];
        const from = /from=["']([^"']+)["']/.exec(iq)?.[1];
        const node = /node=["']([^"']+)["']/.exec(iq)?.[1];
        c.send(
          `<iq type='result' id='${id}' to='${from}'><query xmlns='${DISCO}'` +
            (node ? ` node='${node}'` : "") + `>${features}</query></iq>`,
        );
      });
      c.onText((text) => {
        messages.push(text);
        iqs.push(text);
      });
      c.send(
        `<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' ` +
          `node='urn:cadence:bench' ver='${ver}'/></presence>`,
      );
      conns.push(c);
    });
    if (opened.failed > 0) throw new Error(`contacts failed to log in: ${opened.errors[0]}`);
    const hub = await openSession(
      target(server.port, contacts),
      { username: HUB, password: "any" },
      "pep",
      OPEN_MODE,
    );
    conns.push(hub);
    hub.onText(() => {});
    await new Promise((resolve) => setTimeout(resolve, AFTER_CAPS_MS));

    const one = async (n: number) => {
      const sentAt = performance.now();
      hub.send(publish(n));
      return (await deliveries.all(n, TIMEOUT_MS)) - sentAt;
    };
    for (let n = 0; n < WARM; n++) await one(n);
    const warmDelivered = deliveries.total;
    const times: number[] = [];
    const errors: string[] = [];
    let sent = 0;
    const cpuBefore = await server.cpuMs();
    for (let n = WARM; n < WARM + publishes; n++) {
      sent++;
      try {
        times.push(await one(n));
      } catch (e) {
        errors.push((e as Error).message);
        break;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
    const serverCpuMs = (await server.cpuMs()) - cpuBefore;
    const delivered = deliveries.total - warmDelivered;
    const closeFailed = await closeAll(conns);
    return {
      contacts,
      publishes: sent,
      completed: times.length,
      delivered,
      errors,
      serverCpuMs,
      cpuUsPerNotification: delivered > 0 ? serverCpuMs * 1000 / delivered : NaN,
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

export function describePepRun(r: PepRun): string {
  return `${r.completed}/${r.publishes} items to ${r.contacts} contacts, ${r.delivered} ` +
    `notifications; server CPU ${(r.serverCpuMs / 1000).toFixed(2)} s = ` +
    `${r.cpuUsPerNotification.toFixed(1)} µs/notification; to the last contact p50 ` +
    `${r.lastContactP50Ms.toFixed(2)} ms, p99 ${r.lastContactP99Ms.toFixed(2)} ms; ` +
    `${r.closeFailed} unclean closes, exit ${r.exitCode}` + details(r.errors, r.serverOutput);
}

export function pepRows(runs: PepRun[], contacts: number): Row[] {
  const name = `pep ${contacts} contacts`;
  return [
    row(name, "server CPU µs/notification", runs.map((r) => r.cpuUsPerNotification), 1),
    row(name, "to last contact p50 ms", runs.map((r) => r.lastContactP50Ms), 2),
    row(name, "to last contact p99 ms", runs.map((r) => r.lastContactP99Ms), 2),
    row(name, "missing notifications", runs.map((r) => r.publishes * r.contacts - r.delivered), 0),
  ];
}
