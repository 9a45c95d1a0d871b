/**
 * Message routing: a fresh server, 50 warm-up logins, P pairs of bound
 * sessions with initial presence, an unmeasured warm-up exchange, then each
 * sender sends M chat messages to its partner's full JID with W in flight.
 * Reports server CPU per delivered message, messages/s and one-way latency,
 * loaded (P=100, W=20) and unloaded (P=10, W=1).
 * @module
 */
import { MESSAGE_BYTES, type Pair } from "../message_flow.ts";
import { OPEN_SETUP, warmAccounts, warmUp } from "../open_logins.ts";
import { ANCHORS, details, NO_ANCHOR, type Row, row } from "../report.ts";
import {
  closePairs,
  describeRoute,
  measureRoute,
  openPairs,
  type RouteMeasure,
  warmRoute,
} from "../route_measure.ts";
import { type AccountSetup, numbered, type ServerUnderTest, type Template } from "../servers.ts";

/** How many pairs exchange messages, and how many each keeps in flight. */
export interface RouteShape {
  label: string;
  pairs: number;
  window: number;
}

/** The loaded run: the figure to compare with the peers' CPU per message. */
export const LOADED: RouteShape = { label: "P=100 W=20", pairs: 100, window: 20 };
/** The unloaded run: one message in flight per pair, for latency. */
export const UNLOADED: RouteShape = { label: "P=10 W=1", pairs: 10, window: 1 };

/** Messages per pair in the unmeasured warm-up exchange. */
export const WARM_MESSAGES = 20;

/** How the scenario was set up, for the report. */
export const ROUTE_SETUP = `${OPEN_SETUP}; ${MESSAGE_BYTES}-byte chat messages to the ` +
  `partner's full JID, send time in the body; ${WARM_MESSAGES} warm-up messages per pair ` +
  "before the measured exchange";

/** The figures of one measured run. */
export interface RouteRun extends RouteMeasure {
  shape: string;
  closeFailed: number;
  exitCode: number;
  /** The end of what the server printed (warnings and errors only, at `log: "warn"`). */
  serverOutput: string;
}

/** The accounts of the route scenarios: the warm-up's and `pairs` pairs. */
export function routeSetup(pairs: number, concurrency: number): AccountSetup {
  return {
    accounts: [
      ...warmAccounts(concurrency),
      ...numbered("route-s", pairs),
      ...numbered("route-r", pairs),
    ],
  };
}

/** One measured run on a fresh server. */
export async function runRoute(
  sut: ServerUnderTest,
  template: Template,
  shape: RouteShape,
  messages: number,
  concurrency: number,
): Promise<RouteRun> {
  const server = await sut.start(template);
  let pairs: Pair[] = [];
  try {
    await warmUp(server.port, concurrency);
    pairs = await openPairs(server.port, shape.pairs, concurrency);
    await warmRoute(pairs, WARM_MESSAGES, shape.window);
    const measured = await measureRoute(server, pairs, messages, shape.window);
    const closeFailed = await closePairs(pairs);
    return {
      shape: shape.label,
      ...measured,
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

/** One log line (plus errors and server output) for a finished run. */
export function describeRouteRun(r: RouteRun): string {
  return `${r.shape}: ${describeRoute(r)}, ${r.closeFailed} unclean closes, exit ${r.exitCode}` +
    details(r.errors, r.serverOutput);
}

/** The table rows for the runs of one shape. */
export function routeRows(shape: RouteShape, runs: RouteRun[]): Row[] {
  const name = `route ${shape.label}`;
  const loaded = shape === LOADED;
  return [
    row(
      name,
      "server CPU µs/message",
      runs.map((r) => r.cpuUsPerMessage),
      1,
      loaded ? ANCHORS.cpuPerMessage : NO_ANCHOR,
    ),
    row(name, "messages/s delivered", runs.map((r) => r.messagesPerSecond), 0),
    row(
      name,
      "one-way latency p50 ms",
      runs.map((r) => r.latencyP50Ms),
      2,
      loaded ? NO_ANCHOR : ANCHORS.latencyP50,
    ),
    row(
      name,
      "one-way latency p99 ms",
      runs.map((r) => r.latencyP99Ms),
      2,
      loaded ? NO_ANCHOR : ANCHORS.latencyP99,
    ),
    row(name, "not delivered", runs.map((r) => r.sent - r.delivered), 0),
  ];
}
