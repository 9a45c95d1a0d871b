/**
 * Metrics over time for the web admin: a fixed-size ring of samples (so its
 * memory is bounded whatever the uptime) and small SVG line charts drawn on
 * the server, so pages need no script.
 *
 * @example
 * ```ts
 * const ring = new SampleRing(360);
 * ring.push({ t: Date.now(), sessions: 3, connections: 4, rss: 50e6, stanzas: 1.5 });
 * chart("Sessions", ring.series("sessions"), (v) => String(v));
 * ```
 * @module
 */
import { type Html, html, raw } from "./html.ts";

export interface Sample {
  /** When (ms since the epoch). */
  t: number;
  /** Client sessions with a bound resource. */
  sessions: number;
  /** Open connections of every type (c2s, s2s, WebSocket, BOSH, …). */
  connections: number;
  /** Resident set size, bytes. */
  rss: number;
  /** Stanzas received per second since the previous sample. */
  stanzas: number;
}

export type SampleField = Exclude<keyof Sample, "t">;

/** The last `size` samples, oldest first. */
export class SampleRing {
  private items: Sample[] = [];
  private next = 0;

  constructor(readonly size: number) {}

  push(s: Sample): void {
    if (this.items.length < this.size) this.items.push(s);
    else this.items[this.next] = s;
    this.next = (this.next + 1) % this.size;
  }

  /** Every sample, oldest first. */
  all(): Sample[] {
    if (this.items.length < this.size) return [...this.items];
    return [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }

  /** One field's values over time: [t, value] pairs, oldest first. */
  series(field: SampleField): Array<[number, number]> {
    return this.all().map((s) => [s.t, s[field]]);
  }

  get length(): number {
    return this.items.length;
  }
}

const W = 320, H = 90, PAD = 4;

/** A small line chart with its title, last value and maximum. */
export function chart(
  title: string,
  points: Array<[number, number]>,
  format: (v: number) => string,
): Html {
  const last = points.length ? points[points.length - 1][1] : undefined;
  const max = Math.max(0, ...points.map((p) => p[1]));
  let line = "";
  if (points.length === 1) points = [[0, points[0][1]], [1, points[0][1]]];
  if (points.length >= 2) {
    const t0 = points[0][0], t1 = points[points.length - 1][0];
    const span = t1 - t0 || 1;
    const top = max || 1;
    line = points.map(([t, v], i) => {
      const x = PAD + ((t - t0) / span) * (W - 2 * PAD);
      const y = H - PAD - (v / top) * (H - 2 * PAD);
      return `${i === 0 ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)}`;
    }).join(" ");
  }
  return html`
    <figure class="chart">
      <figcaption>${title}: <b>${last === undefined ? "–" : format(last)}</b>
    <small>(max ${format(max)})</small></figcaption>
      <svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img"
        aria-label="${title}">
    <rect x="0" y="0" width="${W}" height="${H}" fill="#f6f8fa" stroke="#d0d7de"/>
    ${line ? raw(`<path d="${line}" fill="none" stroke="#0969da" stroke-width="1.5"/>`) : ""}
      </svg>
    </figure>
  `;
}

/** Bytes as MiB. */
export function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}
