/**
 * Token buckets by key (an address, an account), in a table of bounded size:
 * each key may spend `capacity` tokens, refilled evenly over `perSeconds`.
 * Used to slow down repeated failures (e.g. password guesses from one
 * address) across connections.
 *
 * @example
 * ```ts
 * const failures = new KeyedThrottle({ capacity: 5, perSeconds: 30 });
 * if (!failures.allowed(ip)) refuse();
 * else if (!ok) failures.take(ip);
 * ```
 * @module
 */

interface Bucket {
  tokens: number;
  at: number;
}

export class KeyedThrottle {
  private buckets = new Map<string, Bucket>();
  private capacity: number;
  private ratePerMs: number;
  private maxKeys: number;

  constructor(opts: { capacity: number; perSeconds: number; maxKeys?: number }) {
    this.capacity = Math.max(1, opts.capacity);
    this.ratePerMs = this.capacity / (Math.max(opts.perSeconds, 0.001) * 1000);
    this.maxKeys = opts.maxKeys ?? 100_000;
  }

  private current(key: string, now: number): Bucket | undefined {
    const b = this.buckets.get(key);
    if (!b) return undefined;
    b.tokens = Math.min(this.capacity, b.tokens + (now - b.at) * this.ratePerMs);
    b.at = now;
    if (b.tokens >= this.capacity) {
      this.buckets.delete(key); // full again: nothing to remember
      return undefined;
    }
    return b;
  }

  /** Whether `key` has a token left (none is taken). */
  allowed(key: string, now = Date.now()): boolean {
    const b = this.current(key, now);
    return b === undefined || b.tokens >= 1;
  }

  /** Spends one token of `key`. */
  take(key: string, now = Date.now()): void {
    const b = this.current(key, now);
    if (b) {
      b.tokens = Math.max(0, b.tokens - 1);
      // Move to the end: the table forgets the keys untouched the longest first.
      this.buckets.delete(key);
      this.buckets.set(key, b);
      return;
    }
    if (this.buckets.size >= this.maxKeys) {
      this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, { tokens: this.capacity - 1, at: now });
  }

  /** Keys being remembered (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }
}
