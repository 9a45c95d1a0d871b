/**
 * Is something listening? For tests that start servers (peers, or Cadence
 * in another process) and wait for their ports, or check a port closed.
 *
 * @example
 * ```ts
 * await listening("127.0.0.3", 5269);        // waits up to 15 s
 * assert.equal(await accepts("127.0.0.1", port), false);
 * ```
 * @module
 */
import { connect } from "node:net";

/** Whether a TCP connection to host:port is accepted within `ms`. */
export function accepts(host: string, port: number, ms = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, ms);
    s.once("connect", () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** Waits until something accepts on host:port; throws after `ms`. */
export async function listening(host: string, port: number, ms = 15_000): Promise<void> {
  for (const deadline = Date.now() + ms; Date.now() < deadline;) {
    if (await accepts(host, port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${host}:${port}`);
}
