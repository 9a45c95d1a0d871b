/**
 * Command-line options of `deno task bench`.
 * @module
 */
import { parseArgs } from "node:util";

/** The scenarios, in the order they run. */
export const SCENARIOS = [
  "login-plain",
  "login-scram",
  "idle-memory",
  "route",
  "route-churn",
  "presence",
  "flood",
  "idle-unauth",
  "mobile",
  "pep",
  "muc",
  "s2s",
  "web",
] as const;
/** One scenario's name. */
export type ScenarioName = typeof SCENARIOS[number];

/** Everything a benchmark run is told. */
export interface BenchOptions {
  only: ScenarioName[];
  runs: number;
  logins: number;
  concurrency: number;
  sessions: number;
  holdSeconds: number;
  /** Messages each sender sends in a measured routing exchange (M). */
  messages: number;
  /** Logins and logouts between the two routing measurements of route-churn. */
  churn: number;
  /** Status changes the presence scenario measures (K). */
  broadcasts: number;
  /** Online contacts of the user whose status changes. */
  contacts: number;
  /** Another checkout to run the server from, or undefined for this one. */
  server?: string;
  /** Run every scenario on Prosody and ejabberd too, interleaved with Cadence run by run. */
  peers: boolean;
  /** Messages the flood scenario sends. */
  floodMessages: number;
  /** Body size of each flood message, bytes. */
  floodBody: number;
  /** Time limit of the flood's sending phase, seconds. */
  floodSeconds: number;
  /** Idle unauthenticated connections the idle-unauth scenario opens. */
  unauth: number;
  /** Cadence's abuse limits off in flood and idle-unauth (rate limit, per-address cap). */
  noLimits: boolean;
  /** Occupants of the muc scenario's room (N). */
  occupants: number;
  /** Groupchat messages the muc scenario's fan-out measures (K). */
  mucMessages: number;
  /** Joins the muc scenario measures into the full room (J). */
  joins: number;
  /** Idle WebSocket sessions, then as many BOSH sessions, the web scenario holds (N). */
  webSessions: number;
  /** Size of the web scenario's upload, MB (10^6 bytes). */
  uploadMb: number;
}

/** Usage text for `--help`. */
export const USAGE = `deno task bench [options]

  --only NAME        run only this scenario (repeatable or comma-separated):
                     ${SCENARIOS.join(", ")}
  --runs N           fresh-server runs per scenario (default 3, at least 1)
  --logins N         measured logins per login run (default 10000)
  --concurrency N    concurrent clients (default 50)
  --sessions N       idle sessions to hold (default 10000)
  --hold S           seconds to hold the idle sessions (default 30)
  --messages N       messages per sender in a routing run (M, default 200)
  --churn N          logins and logouts between route-churn's two measurements (default 5000)
  --broadcasts N     status changes (presence) or items published (pep) measured (K, default 1000)
  --contacts N       online contacts of the user who changes status or publishes (default 100)
  --flood-messages N messages the flood scenario sends (default 50000)
  --flood-body N     body bytes of each flood message (default 2048)
  --flood-seconds S  time limit of the flood's sending phase (default 120)
  --unauth N         idle unauthenticated connections opened by idle-unauth (default 2000)
  --no-limits        flood and idle-unauth: run Cadence with its abuse limits off (no inbound
                     rate limit, no per-address cap on unauthenticated connections), so
                     the flood's 100 MB really flows into the output buffer cap and every
                     idle connection is held; by default they show the limits at work
  --occupants N      occupants of the muc scenario's room (default 500)
  --muc-messages N   groupchat messages muc's fan-out measures, one at a time (default 200)
  --joins N          joins muc measures into the full room, one at a time (default 20)
  --web-sessions N   idle WebSocket sessions, then as many BOSH sessions, web holds (default 500)
  --upload-mb N      size of the file web uploads and downloads, MB (default 100)
  --server DIR       run main.ts from another checkout (to compare versions)
  --peers            also run each scenario on Debian's prosody (0.12) and ejabberd (23),
                     started by the bench with equivalent settings: per run, Cadence, then
                     Prosody, then ejabberd, each a fresh process; the table gives each figure
                     for all three and Cadence's ratio to each peer. A peer that is not
                     installed is skipped with the apt-get command to install it. Not run
                     by CI.
  --help             this text

Every scenario runs on a fresh server per run with accounts created before the
runs (plaintext-stored passwords, PLAIN on plain TCP; login-scram: hashed
passwords, SCRAM-SHA-1 after STARTTLS). The JSON summary goes to bench/results/.`;

/** Parses `args`; throws with a readable message on bad input. */
export function parseOptions(args: string[]): BenchOptions | "help" {
  const { values } = parseArgs({
    args,
    options: {
      only: { type: "string", multiple: true },
      runs: { type: "string", default: "3" },
      logins: { type: "string", default: "10000" },
      concurrency: { type: "string", default: "50" },
      sessions: { type: "string", default: "10000" },
      hold: { type: "string", default: "30" },
      messages: { type: "string", default: "200" },
      churn: { type: "string", default: "5000" },
      broadcasts: { type: "string", default: "1000" },
      contacts: { type: "string", default: "100" },
      server: { type: "string" },
      peers: { type: "boolean", default: false },
      "flood-messages": { type: "string", default: "50000" },
      "flood-body": { type: "string", default: "2048" },
      "flood-seconds": { type: "string", default: "120" },
      unauth: { type: "string", default: "2000" },
      "no-limits": { type: "boolean", default: false },
      occupants: { type: "string", default: "500" },
      "muc-messages": { type: "string", default: "200" },
      joins: { type: "string", default: "20" },
      "web-sessions": { type: "string", default: "500" },
      "upload-mb": { type: "string", default: "100" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return "help";
  const only = (values.only ?? [...SCENARIOS]).flatMap((s) => s.split(",")).map((s) => s.trim());
  for (const name of only) {
    if (!(SCENARIOS as readonly string[]).includes(name)) {
      throw new Error(`unknown scenario "${name}"; known: ${SCENARIOS.join(", ")}`);
    }
  }
  return {
    only: SCENARIOS.filter((s) => only.includes(s)),
    runs: count("runs", values.runs, 1, 100),
    logins: count("logins", values.logins, 1, 1_000_000),
    concurrency: count("concurrency", values.concurrency, 1, 5000),
    sessions: count("sessions", values.sessions, 1, 1_000_000),
    holdSeconds: count("hold", values.hold, 0, 3600),
    messages: count("messages", values.messages, 1, 100_000),
    churn: count("churn", values.churn, 0, 1_000_000),
    broadcasts: count("broadcasts", values.broadcasts, 1, 100_000),
    contacts: count("contacts", values.contacts, 1, 5000),
    server: values.server,
    peers: values.peers,
    floodMessages: count("flood-messages", values["flood-messages"], 1, 10_000_000),
    floodBody: count("flood-body", values["flood-body"], 1, 200_000),
    floodSeconds: count("flood-seconds", values["flood-seconds"], 1, 3600),
    unauth: count("unauth", values.unauth, 1, 1_000_000),
    noLimits: values["no-limits"],
    occupants: count("occupants", values.occupants, 1, 5000),
    mucMessages: count("muc-messages", values["muc-messages"], 1, 100_000),
    joins: count("joins", values.joins, 1, 1000),
    webSessions: count("web-sessions", values["web-sessions"], 1, 100_000),
    uploadMb: count("upload-mb", values["upload-mb"], 1, 10_000),
  };
}

function count(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`--${name} must be a whole number from ${min} to ${max}, not "${text}"`);
  }
  return n;
}
