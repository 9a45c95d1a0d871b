/**
 * Median and range of repeated measurements.
 * @module
 */

/** Median, minimum and maximum of a set of runs. */
export interface Summary {
  median: number;
  min: number;
  max: number;
}

/** Summarises `values`; NaN everywhere when there are none. */
export function summarize(values: number[]): Summary {
  if (values.length === 0) return { median: NaN, min: NaN, max: NaN };
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1] };
}

/** `median (min–max)` with `digits` decimals. */
export function formatSummary(s: Summary, digits: number): string {
  if (Number.isNaN(s.median)) return "n/a";
  const f = (n: number) => n.toFixed(digits);
  return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

/** The `p`-th percentile (0–100, nearest rank) of `values`; NaN when there are none. */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length, Math.max(1, rank)) - 1];
}
