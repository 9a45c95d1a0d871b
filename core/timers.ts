/**
 * Timers that never keep the process alive. (With node types in scope,
 * `setTimeout`'s declared type is Node's `Timeout`; in Deno it is a number.)
 *
 * @example
 * ```ts
 * const id = unrefTimeout(() => console.log("later"), 1000);
 * clearTimeout(id);
 * ```
 * @module
 */

/** `setTimeout` that does not hold the process open; returns the timer id. */
export function unrefTimeout(fn: () => void, ms: number): number {
  const id = setTimeout(fn, ms) as unknown as number;
  Deno.unrefTimer(id);
  return id;
}
