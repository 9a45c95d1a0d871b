/**
 * The priority event bus: Prosody's `util.events`, made deterministic.
 *
 * Handlers run by priority (higher first), then by registration order. The
 * first handler returning anything other than `undefined` stops the event and
 * its value is the result. When no handler returns a promise the whole
 * dispatch is synchronous (no microtask per handler); a handler that returns a
 * promise is awaited before the next one runs.
 *
 * @example
 * ```ts
 * const bus = new EventBus();
 * bus.on("iq-get/host/urn:xmpp:ping:ping", () => true, 10);
 * bus.fire("iq-get/host/urn:xmpp:ping:ping", {}); // => true
 * ```
 * @module
 */

// deno-lint-ignore no-explicit-any
export type Handler<E = any> = (event: E) => unknown;

interface Entry {
  fn: Handler;
  priority: number;
  seq: number;
}

let nextSeq = 0;

export function isPromise(x: unknown): x is PromiseLike<unknown> {
  return x !== null && typeof x === "object" &&
    typeof (x as PromiseLike<unknown>).then === "function";
}

export class EventBus {
  /** Sorted handler lists, by event name. */
  private handlers = new Map<string, Entry[]>();

  /** Adds `fn` for `name`. Adding the same function again only changes its priority. */
  on(name: string, fn: Handler, priority = 0): void {
    let list = this.handlers.get(name);
    if (!list) this.handlers.set(name, list = []);
    const existing = list.find((e) => e.fn === fn);
    const entry = existing ?? { fn, priority, seq: nextSeq++ };
    entry.priority = priority;
    // Copy on write: a dispatch in progress keeps iterating its own list.
    const next = existing ? list.slice() : [...list, entry];
    next.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    this.handlers.set(name, next);
  }

  off(name: string, fn: Handler): void {
    const list = this.handlers.get(name);
    if (!list) return;
    const next = list.filter((e) => e.fn !== fn);
    if (next.length) this.handlers.set(name, next);
    else this.handlers.delete(name);
  }

  has(name: string): boolean {
    return this.handlers.has(name);
  }

  /**
   * Fires an event whose result nobody waits for: a handler's error, thrown
   * or rejected, goes to `onError` instead of reaching the process.
   */
  emit(name: string, event: unknown, onError: (error: unknown) => void): void {
    try {
      const r = this.fire(name, event);
      if (isPromise(r)) Promise.resolve(r).catch(onError);
    } catch (e) {
      onError(e);
    }
  }

  /**
   * Runs the handlers of `name` in order; returns the first non-undefined
   * result, synchronously when every handler was synchronous.
   */
  fire(name: string, event: unknown): unknown {
    const list = this.handlers.get(name);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) {
      const r = list[i].fn(event);
      if (r === undefined) continue;
      if (isPromise(r)) return continueAsync(list, i, r, event);
      return r;
    }
    return undefined;
  }
}

async function continueAsync(
  list: Entry[],
  i: number,
  pending: PromiseLike<unknown>,
  event: unknown,
): Promise<unknown> {
  const first = await pending;
  if (first !== undefined) return first;
  for (i++; i < list.length; i++) {
    let r = list[i].fn(event);
    if (isPromise(r)) r = await r;
    if (r !== undefined) return r;
  }
  return undefined;
}
