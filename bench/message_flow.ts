/**
 * The measured exchange of the routing scenarios: in each pair of bound
 * sessions the sender sends `perPair` chat messages to the receiver's full
 * JID, never more than `window` of them unanswered — the next go out as
 * deliveries (or error bounces) come in. Each body carries the generator's
 * send time, so the receiver's clock gives the one-way latency (both ends
 * live in this process).
 * @module
 */
import type { BenchConnection } from "./connection.ts";
import { isErrorStanza, openingTag, StanzaScanner } from "./stanza_scanner.ts";

/** A sender and the session it sends to. */
export interface Pair {
  sender: BenchConnection;
  receiver: BenchConnection;
}

/** Limits of one exchange. */
export interface FlowLimits {
  /** Give up after this long in all. */
  totalMs: number;
  /** Give up when nothing at all arrived for this long. */
  stallMs: number;
}

/** What an exchange did. */
export interface FlowResult {
  sent: number;
  delivered: number;
  /** Messages bounced back to their sender with `type='error'`. */
  bounced: number;
  /** Messages neither delivered nor bounced when the exchange ended. */
  lost: number;
  /** The first few bounces and reasons for stopping early, for the report. */
  errors: string[];
  /** One-way latency of each delivered message, ms. */
  latenciesMs: Float64Array;
  /** From the first send to the last delivery or bounce, ms. */
  elapsedMs: number;
}

/** Size a sent message is padded to, as the reference method's ~250-byte chat messages. */
export const MESSAGE_BYTES = 250;
const SENT_AT = /<body>t=([\d.]+) /;
const WATCH_INTERVAL_MS = 250;
const ignore = () => {};

/** One chat message from pair `pair`, number `seq`, stamped with the time of sending. */
function chat(to: string, pair: number, seq: number, sentAt: number): string {
  const head = `<message type='chat' to='${to}' id='m${pair}-${seq}'><body>t=${sentAt.toFixed(3)} `;
  const tail = "</body></message>";
  return head + "x".repeat(Math.max(0, MESSAGE_BYTES - head.length - tail.length)) + tail;
}

/** Runs the exchange on `pairs` (bound sessions with initial presence) until done or a limit. */
export function runFlow(
  pairs: Pair[],
  perPair: number,
  window: number,
  limits: FlowLimits,
): Promise<FlowResult> {
  const latencies = new Float64Array(pairs.length * perPair);
  const r = { sent: 0, delivered: 0, bounced: 0, errors: [] as string[] };
  const start = performance.now();
  let lastEvent = start;
  let unfinished = pairs.length;
  let stopped = false;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => finish = resolve);

  pairs.forEach((pair, index) => {
    const to = pair.receiver.jid;
    let sent = 0, answered = 0;
    const sendMore = () => {
      let out = "";
      while (!stopped && sent < perPair && sent - answered < window) {
        out += chat(to, index, sent++, performance.now());
        r.sent++;
      }
      if (out) pair.sender.send(out);
    };
    const answer = () => {
      answered++;
      lastEvent = performance.now();
      if (answered < perPair) sendMore();
      else if (--unfinished === 0) finish();
    };
    const delivered = new StanzaScanner("message", (stanza) => {
      const m = SENT_AT.exec(stanza);
      if (!m || isErrorStanza(stanza)) return;
      latencies[r.delivered++] = performance.now() - Number(m[1]);
      answer();
    });
    const bounced = new StanzaScanner("message", (stanza) => {
      if (!isErrorStanza(stanza)) return;
      r.bounced++;
      if (r.errors.length < 3) {
        r.errors.push(`bounced: ${openingTag(stanza)}…${stanza.slice(stanza.indexOf("<error"))}`);
      }
      answer();
    });
    pair.receiver.onText((text) => delivered.push(text));
    pair.sender.onText((text) => bounced.push(text));
    sendMore();
  });

  const watch = setInterval(() => {
    const now = performance.now();
    let reason = "";
    if (now - start > limits.totalMs) reason = `not done after ${limits.totalMs} ms`;
    else if (now - lastEvent > limits.stallMs) reason = `nothing arrived for ${limits.stallMs} ms`;
    else if (pairs.some((p) => p.sender.closed || p.receiver.closed)) {
      reason = "the server closed a session";
    }
    if (reason) {
      r.errors.push(reason);
      finish();
    }
  }, WATCH_INTERVAL_MS);

  return done.then(() => {
    stopped = true;
    clearInterval(watch);
    for (const p of pairs) {
      p.sender.onText(ignore);
      p.receiver.onText(ignore);
    }
    return {
      sent: r.sent,
      delivered: r.delivered,
      bounced: r.bounced,
      lost: r.sent - r.delivered - r.bounced,
      errors: r.errors,
      latenciesMs: latencies.subarray(0, r.delivered),
      elapsedMs: lastEvent - start,
    };
  });
}
