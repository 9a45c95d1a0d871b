/**
 * Date and time as XMPP writes them (XEP-0082 DateTime profile), with
 * sub-second precision kept both ways.
 *
 * @example
 * ```ts
 * parseDateTime("2010-07-10T23:08:25.5Z"); // 1278803305.5 (seconds)
 * formatDateTime(1278803305.5);            // "2010-07-10T23:08:25.500Z"
 * ```
 * @module
 */

const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Seconds since the epoch of a XEP-0082 DateTime, or undefined when it is not one. */
export function parseDateTime(text: string): number | undefined {
  if (!DATETIME.test(text)) return undefined;
  // Fractions finer than milliseconds are kept (Date would drop them).
  const fraction = /\.(\d+)/.exec(text)?.[1];
  const ms = Date.parse(text.replace(/\.\d+/, ""));
  if (Number.isNaN(ms)) return undefined;
  return ms / 1000 + (fraction ? Number(`0.${fraction}`) : 0);
}

/** A XEP-0082 DateTime (UTC, milliseconds) for seconds since the epoch. */
export function formatDateTime(seconds: number): string {
  return new Date(Math.round(seconds * 1000)).toISOString();
}
