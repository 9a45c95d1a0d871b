/**
 * The results table: Cadence's medians and ranges beside the anchor figures
 * measured for Prosody and ejabberd (shared/reference/benchmarking.md) and
 * Cadence's targets.
 * @module
 */
import { formatSummary, summarize, type Summary } from "./stats.ts";

/** One line of the table. */
export interface Row {
  scenario: string;
  figure: string;
  cadence: Summary;
  digits: number;
  prosody: string;
  ejabberd: string;
  target: string;
}

/** Anchor columns of a row; empty where the peers have no figure. */
export interface Anchor {
  prosody: string;
  ejabberd: string;
  target: string;
}

/** No anchor figures. */
export const NO_ANCHOR: Anchor = { prosody: "", ejabberd: "", target: "" };

/** A row summarising one figure's values over the runs. */
export function row(
  scenario: string,
  figure: string,
  values: number[],
  digits: number,
  anchor: Anchor = NO_ANCHOR,
): Row {
  return { scenario, figure, cadence: summarize(values), digits, ...anchor };
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

/** Renders rows as a fixed-width text table. */
export function renderTable(rows: Row[]): string {
  const head = [
    "scenario",
    "figure",
    "Cadence median (range)",
    "Prosody 0.12",
    "ejabberd 23",
    "target",
  ];
  const body = rows.map((r) => [
    r.scenario,
    r.figure,
    formatSummary(r.cadence, r.digits),
    r.prosody,
    r.ejabberd,
    r.target,
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  const line = (cells: string[]) => cells.map((s, c) => s.padEnd(widths[c])).join(" | ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("-|-"), ...body.map(line)].join("\n");
}
