/**
 * The results tables: Cadence's medians and ranges beside the anchor
 * figures measured for Prosody and ejabberd (shared/reference/benchmarking.md)
 * and Cadence's targets, or (`--peers`) beside Prosody's and ejabberd's
 * figures measured in the same run, with ratios.
 * @module
 */
import { formatSummary, summarize, type Summary } from "./stats.ts";

/** Which way a figure is better, for reading the ratios. */
export type Better = "lower" | "higher" | "";

/** One figure of one server, summarised over its runs. */
export interface Row {
  scenario: string;
  figure: string;
  summary: Summary;
  values: number[];
  digits: number;
  better: Better;
  anchor: Anchor;
}

/** One line of the table: a figure for every server measured. */
export interface TableRow {
  scenario: string;
  figure: string;
  digits: number;
  better: Better;
  anchor: Anchor;
  /** Per server name, its summary (absent: not measured). */
  servers: Record<string, Summary>;
}

/** Anchor columns of a row; empty where the peers have no figure. */
export interface Anchor {
  prosody: string;
  ejabberd: string;
  target: string;
}

/** No anchor figures. */
export const NO_ANCHOR: Anchor = { prosody: "", ejabberd: "", target: "" };

/**
 * Which way a figure is better, from its name: rates and counts of what
 * worked are better higher; CPU, memory, latency and counts of failures
 * lower.
 */
export function betterOf(figure: string): Better {
  if (/CPU|KiB|MiB|latency|failed|not delivered|missing|dropped|error|unclean|÷/i.test(figure)) {
    return "lower";
  }
  if (/\/s\b/.test(figure)) return "higher";
  return "";
}

/** A row summarising one figure's values over the runs. */
export function row(
  scenario: string,
  figure: string,
  values: number[],
  digits: number,
  anchor: Anchor = NO_ANCHOR,
  better: Better = betterOf(figure),
): Row {
  return { scenario, figure, summary: summarize(values), values, digits, better, anchor };
}

/** Merges the rows of several servers into table rows, in the order they first appear. */
export function mergeRows(perServer: { server: string; rows: Row[] }[]): TableRow[] {
  const out = new Map<string, TableRow>();
  for (const { server, rows } of perServer) {
    for (const r of rows) {
      const key = `${r.scenario}\u0000${r.figure}`;
      let t = out.get(key);
      if (!t) {
        t = {
          scenario: r.scenario,
          figure: r.figure,
          digits: r.digits,
          better: r.better,
          anchor: r.anchor,
          servers: {},
        };
        out.set(key, t);
      }
      t.servers[server] = r.summary;
    }
  }
  return [...out.values()];
}

/** Cadence's median ÷ a peer's median, or "" when either is missing, or "–" when undefined. */
export function ratio(cadence: Summary | undefined, peer: Summary | undefined): string {
  if (!cadence || !peer || Number.isNaN(cadence.median) || Number.isNaN(peer.median)) return "";
  if (peer.median === 0) return cadence.median === 0 ? "=" : "–";
  const r = cadence.median / peer.median;
  return `${r < 10 ? r.toFixed(2) : r.toFixed(1)}×`;
}

/** Milliseconds as seconds, for log lines. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** KiB as MiB, for log lines. */
export function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** A run's first errors and the server's own output, indented, or "". */
export function details(errors: string[], serverOutput: string): string {
  let out = "";
  if (errors.length) out += `\n  first errors:\n    ${errors.join("\n    ")}`;
  const said = serverOutput.trim();
  if (said) out += `\n  server output (tail):\n    ${said.split("\n").slice(-10).join("\n    ")}`;
  return out;
}

/** The peers' anchors (medians, ranges in brackets) and Cadence's targets. */
export const ANCHORS = {
  cpuPerPlainLogin: {
    prosody: "1.92 (1.13–3.37); 0.80 gen. GC",
    ejabberd: "1.18 (1.04–1.41)",
    target: "≤ 0.9",
  },
  kibPerIdleSession: { prosody: "33", ejabberd: "54", target: "≤ 33" },
  idleHoldCpu: { prosody: "0.00 (19,500 sess.)", ejabberd: "0.00 (19,500 sess.)", target: "0" },
  rssAfterClose: { prosody: "653 MiB kept (19,500)", ejabberd: "part returned", target: "" },
  cpuPerMessage: { prosody: "104; 41 gen. GC", ejabberd: "35", target: "≤ 35" },
  latencyP50: { prosody: "1.2; 0.6 gen. GC", ejabberd: "0.4", target: "" },
  latencyP99: { prosody: "6.4; 5.5 gen. GC", ejabberd: "4.7", target: "" },
  cpuPerMessageAfterChurn: {
    prosody: "32 → 223 over ~7,000 logins",
    ejabberd: "",
    target: "no creep",
  },
} satisfies Record<string, Anchor>;

/** Lays out cells as a fixed-width text table. */
function layout(head: string[], body: string[][]): string {
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  const line = (cells: string[]) => cells.map((s, c) => s.padEnd(widths[c])).join(" | ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("-|-"), ...body.map(line)].join("\n");
}

/** Renders Cadence's figures beside the anchors of shared/reference/benchmarking.md. */
export function renderTable(rows: TableRow[]): string {
  const head = [
    "scenario",
    "figure",
    "Cadence median (range)",
    "Prosody 0.12 (anchor)",
    "ejabberd 23 (anchor)",
    "target",
  ];
  const body = rows.map((r) => [
    r.scenario,
    r.figure,
    formatSummary(r.servers.Cadence ?? summarize([]), r.digits),
    r.anchor.prosody,
    r.anchor.ejabberd,
    r.anchor.target,
  ]);
  return layout(head, body);
}

/**
 * Renders the figures measured on Cadence, Prosody and ejabberd in one run,
 * with Cadence's median as a ratio of each peer's, and which way is better.
 */
export function renderPeerTable(rows: TableRow[]): string {
  const head = [
    "scenario",
    "figure",
    "Cadence median (range)",
    "Prosody median (range)",
    "ejabberd median (range)",
    "Cadence/Prosody",
    "Cadence/ejabberd",
    "better",
  ];
  const cell = (s: Summary | undefined, digits: number) => s ? formatSummary(s, digits) : "—";
  const body = rows.map((r) => [
    r.scenario,
    r.figure,
    cell(r.servers.Cadence, r.digits),
    cell(r.servers.Prosody, r.digits),
    cell(r.servers.ejabberd, r.digits),
    ratio(r.servers.Cadence, r.servers.Prosody),
    ratio(r.servers.Cadence, r.servers.ejabberd),
    r.better,
  ]);
  return layout(head, body);
}
