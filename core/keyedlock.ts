/**
 * Serialises async work per key: `run("roster:juliet@localhost", fn)` waits
 * for earlier work on the same key, so a read-modify-write of shared state
 * (a roster, a blocklist) can never interleave with another one.
 *
 * @example
 * ```ts
 * const locks = new KeyedLock();
 * await locks.run("roster:juliet@localhost", async () => { ... });
 * ```
 * @module
 */

export class KeyedLock {
  private tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` after everything queued on `key` before it; returns its result. */
  run<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.then(() => {}, () => {});
    this.tails.set(key, tail);
    tail.then(() => {
      // Nothing else queued: forget the key, so idle keys cost nothing.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
