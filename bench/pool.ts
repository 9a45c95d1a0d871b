/**
 * Runs a numbered task `count` times with at most `concurrency` in flight,
 * stopping early at a deadline. Failures are counted, not thrown.
 * @module
 */

/** What a pool run did. */
export interface PoolResult {
  completed: number;
  failed: number;
  /** The first few failure messages, for the report. */
  errors: string[];
  elapsedMs: number;
}

/**
 * Calls `task(i, worker)` for i = 0 … count−1 with `concurrency` workers; a
 * worker always has the same number, so a task can pick per-worker resources
 * (one account per worker, say). No new task starts after `deadlineMs`.
 */
export async function runPool(
  count: number,
  concurrency: number,
  deadlineMs: number,
  task: (i: number, worker: number) => Promise<void>,
): Promise<PoolResult> {
  const result: PoolResult = { completed: 0, failed: 0, errors: [], elapsedMs: 0 };
  const start = performance.now();
  const stopAt = start + deadlineMs;
  let next = 0;
  async function worker(w: number) {
    while (next < count && performance.now() < stopAt) {
      const i = next++;
      try {
        await task(i, w);
        result.completed++;
      } catch (e) {
        result.failed++;
        if (result.errors.length < 5) result.errors.push((e as Error).message);
      }
    }
  }
  const workers = [];
  for (let w = 0; w < Math.min(concurrency, count); w++) workers.push(worker(w));
  await Promise.all(workers);
  result.elapsedMs = performance.now() - start;
  return result;
}
