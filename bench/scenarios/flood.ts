/**
 * Flood: one authenticated client sends chat messages (by default 50,000 ×
 * 2 KiB bodies, about 100 MB) as fast as the server reads them to another
 * logged-in client's full JID, and that client never reads its socket.
 * What the server cannot write piles up somewhere: in its output buffers
 * (unbounded memory), or it pushes back (stops reading the sender), or it
 * refuses (errors to the sender, or closes the slow session). Meanwhile a
 * third client pings the server every 500 ms. Reports the server's RSS
 * (sampled every 100 ms) before, at its peak during the flood and after,
 * errors the sender got, and the ping latencies. The sending phase stops
 * at a time limit.
 * @module
 */
import type { BenchConnection } from "../connection.ts";
import { OPEN_MODE, OPEN_SETUP, target, warmAccounts, warmUp } from "../open_logins.ts";
import { details, mib, type Row, row, seconds } from "../report.ts";
import {
  type AccountSetup,
  NO_LIMITS,
  type RunningServer,
  type ServerUnderTest,
  type Template,
} from "../servers.ts";
import { percentile } from "../stats.ts";
import { isErrorStanza, openingTag, StanzaScanner } from "../stanza_scanner.ts";
import { closeSession, openSession } from "../xmpp_steps.ts";

/** How big a flood, and for how long at most. */
export interface FloodShape {
  messages: number;
  bodyBytes: number;
  limitSeconds: number;
}

/** The figures of one run. */
export interface FloodRun {
  messages: number;
  bodyBytes: number;
  /** Messages the sender's socket took (written, drained) before the end of the flood. */
  sent: number;
  /** Bytes of those. */
  sentBytes: number;
  /** From the first write to the last accepted write (or the time limit), ms. */
  floodMs: number;
  /** True when the time limit stopped the flood before every message was sent. */
  hitTimeLimit: boolean;
  /** Error stanzas the sender got back (bounces), and the first few of them. */
  senderErrors: number;
  firstErrors: string[];
  /** Stream errors the server sent to the sender or the receiver, and who was closed. */
  senderClosed: boolean;
  receiverClosed: boolean;
  streamErrors: string[];
  rssBeforeKiB: number;
  /** Peak RSS from the start of the flood until the receiver's connection is dropped. */
  rssPeakKiB: number;
  /** Peak RSS after the receiver's connection was dropped (undelivered stanzas go somewhere). */
  rssPeakAfterDropKiB: number;
  /** RSS when the flood ended (all sent, or the time limit). */
  rssEndKiB: number;
  /** RSS after a pause with the receiver still connected and not reading. */
  rssAfterKiB: number;
  /** RSS after the receiver's connection was dropped, and a pause. */
  rssAfterReceiverGoneKiB: number;
  floodCpuMs: number;
  /** Pings sent while the flood was being written, and how they fared. */
  pingsSent: number;
  pingsAnswered: number;
  pingP50Ms: number;
  pingP99Ms: number;
  pingMaxMs: number;
  /** Pings sent in the 10 s after the flood (the server may still be working through it). */
  pingsAfterSent: number;
  pingsAfterAnswered: number;
  pingAfterMaxMs: number;
  exitCode: number;
  serverOutput: string;
}

/** Accounts: the warm-up's, the sender, the receiver, the pinger. */
export function floodSetup(concurrency: number, noLimits = false): AccountSetup {
  return {
    cadence: noLimits ? NO_LIMITS : undefined,
    accounts: [
      ...warmAccounts(concurrency),
      { username: "flood-sender", password: "any" },
      { username: "flood-receiver", password: "any" },
      { username: "flood-pinger", password: "any" },
    ],
  };
}

/** How the scenario was set up, for the report. */
export function floodDescription(s: FloodShape): string {
  return `${OPEN_SETUP}; ${s.messages} chat messages with ${s.bodyBytes}-byte bodies ` +
    `(${(s.messages * s.bodyBytes / 1e6).toFixed(0)} MB) to a full JID whose client never ` +
    "reads, written as fast as the server reads them (the sender waits for its socket's " +
    `drain), at most ${s.limitSeconds} s; RSS sampled every ${RSS_SAMPLE_MS} ms; a third ` +
    `client pings the server every ${PING_EVERY_MS} ms during the flood and the ` +
    `${AFTER_MS / 1000} s after it; RSS "after" ${AFTER_MS / 1000} s after the flood, then ` +
    `${AFTER_MS / 1000} s after dropping the receiver's connection`;
}

const RSS_SAMPLE_MS = 100;
const PING_EVERY_MS = 500;
/** Pause after the flood before the "after" sample, and after dropping the receiver. */
const AFTER_MS = 10_000;
/** A ping unanswered for this long counts as unanswered. */
const PING_TIMEOUT_MS = 30_000;
/** Messages written to the socket per write call. */
const BATCH = 16;

/** Samples the server's RSS every 100 ms and keeps the peak. */
class RssSampler {
  peak = 0;
  last = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private busy = false;

  constructor(private readonly server: RunningServer) {}

  start(): void {
    this.timer = setInterval(async () => {
      if (this.busy) return;
      this.busy = true;
      try {
        this.last = await this.server.rssKiB();
        this.peak = Math.max(this.peak, this.last);
      } catch { /* the server is gone; the run will say so */ }
      this.busy = false;
    }, RSS_SAMPLE_MS);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Pings the server every 500 ms and records each round trip. */
class Pinger {
  sent = 0;
  /** Round trips of answered pings, with the time each was sent. */
  readonly answers: { sentAt: number; rtt: number }[] = [];
  /** Send times of all pings. */
  readonly sentAt: number[] = [];
  private pending = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly conn: BenchConnection) {
    let tail = "";
    conn.onText((text) => {
      // Results are self-closing (`<iq … id='pN'/>`): match ids, keeping a tail in
      // case a tag is split between chunks (an id is counted once: it leaves `pending`).
      const seen = tail + text;
      for (const m of seen.matchAll(/<iq\b[^>]*\bid=(['"])(p\d+)\1/g)) {
        const at = this.pending.get(m[2]);
        if (at !== undefined) {
          this.answers.push({ sentAt: at, rtt: performance.now() - at });
          this.pending.delete(m[2]);
        }
      }
      tail = seen.slice(-256);
    });
  }

  start(): void {
    this.timer = setInterval(() => {
      const id = `p${this.sent++}`;
      const now = performance.now();
      this.pending.set(id, now);
      this.sentAt.push(now);
      this.conn.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    }, PING_EVERY_MS);
  }

  /** Pings sent in [from, to) and the round trips of those answered. */
  window(from: number, to: number): { sent: number; rtts: number[] } {
    return {
      sent: this.sentAt.filter((t) => t >= from && t < to).length,
      rtts: this.answers.filter((a) => a.sentAt >= from && a.sentAt < to).map((a) => a.rtt),
    };
  }

  /** Stops pinging and waits (up to the timeout) for the answers still due. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    const deadline = performance.now() + PING_TIMEOUT_MS;
    while (this.pending.size > 0 && performance.now() < deadline && !this.conn.closed) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** One chat message of the flood. */
function floodMessage(to: string, n: number, body: string): string {
  return `<message type='chat' to='${to}' id='f${n}'><body>${body}</body></message>`;
}

/** One run on a fresh server. */
export async function runFlood(
  sut: ServerUnderTest,
  template: Template,
  shape: FloodShape,
  concurrency: number,
): Promise<FloodRun> {
  const server = await sut.start(template);
  const conns: BenchConnection[] = [];
  const sampler = new RssSampler(server);
  try {
    await warmUp(server.port, concurrency);
    const open = async (name: string, i: number) => {
      const c = await openSession(
        target(server.port, i),
        { username: name, password: "any" },
        "flood",
        OPEN_MODE,
      );
      conns.push(c);
      return c;
    };
    const receiver = await open("flood-receiver", 1);
    const pingerConn = await open("flood-pinger", 2);
    const sender = await open("flood-sender", 3);
    await new Promise((resolve) => setTimeout(resolve, 500)); // initial presence settles
    const streamErrors: string[] = [];
    const watchErrors = (who: string) =>
      new StanzaScanner("stream:error", (s) => {
        if (streamErrors.length < 5) streamErrors.push(`${who}: ${s.slice(0, 300)}`);
      });
    receiver.buffer = "";
    const receiverErrors = watchErrors("receiver");
    let receiverTail = "";
    receiver.onText((text) => {
      // Only what arrives before it stops reading, and a final stream error, are looked at.
      receiverTail = (receiverTail + text).slice(-4096);
      receiverErrors.push(text);
    });
    receiver.pauseReading();

    let senderErrors = 0;
    const firstErrors: string[] = [];
    const bounces = new StanzaScanner("message", (stanza) => {
      if (!isErrorStanza(stanza)) return;
      senderErrors++;
      if (firstErrors.length < 3) {
        const at = stanza.indexOf("<error");
        firstErrors.push(`${openingTag(stanza)}…${at < 0 ? "" : stanza.slice(at, at + 300)}`);
      }
    });
    const senderStreamErrors = watchErrors("sender");
    sender.onText((text) => {
      bounces.push(text);
      senderStreamErrors.push(text);
    });

    const pinger = new Pinger(pingerConn);
    const rssBeforeKiB = await server.rssKiB();
    const cpuBefore = await server.cpuMs();
    sampler.peak = rssBeforeKiB;
    sampler.start();
    pinger.start();

    const body = "x".repeat(shape.bodyBytes);
    const to = receiver.jid;
    const start = performance.now();
    const stopAt = start + shape.limitSeconds * 1000;
    let sent = 0, sentBytes = 0;
    let hitTimeLimit = false;
    let timeLimit: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<"limit">((resolve) => {
      timeLimit = setTimeout(() => resolve("limit"), shape.limitSeconds * 1000);
    });
    try {
      while (sent < shape.messages && !sender.closed) {
        if (performance.now() >= stopAt) {
          hitTimeLimit = true;
          break;
        }
        let out = "";
        const n = Math.min(BATCH, shape.messages - sent);
        for (let k = 0; k < n; k++) out += floodMessage(to, sent + k, body);
        const wrote = await Promise.race([sender.write(out), limit]);
        if (wrote === "limit") {
          hitTimeLimit = true;
          break;
        }
        sent += n;
        sentBytes += out.length;
      }
    } catch { /* the sender was closed; reported below */ }
    clearTimeout(timeLimit);
    const end = performance.now();
    const floodMs = end - start;
    const senderClosed = sender.closed;
    const rssEndKiB = await server.rssKiB();
    const floodCpuMs = (await server.cpuMs()) - cpuBefore;
    await new Promise((resolve) => setTimeout(resolve, AFTER_MS));
    const afterEnd = performance.now();
    await pinger.stop();
    const rssAfterKiB = await server.rssKiB();
    const rssPeakKiB = Math.max(sampler.peak, rssEndKiB, rssAfterKiB);
    sampler.peak = 0;
    const receiverClosed = await receiver.peerHasClosed();
    receiver.destroy();
    await new Promise((resolve) => setTimeout(resolve, AFTER_MS));
    sampler.stop();
    const rssAfterReceiverGoneKiB = await server.rssKiB();
    for (const c of [sender, pingerConn]) {
      if (!c.closed) await closeSession(c, 10_000).catch(() => c.destroy());
    }
    const during = pinger.window(start, end);
    const after = pinger.window(end, afterEnd);
    const rtts = during.rtts;
    return {
      messages: shape.messages,
      bodyBytes: shape.bodyBytes,
      sent,
      sentBytes,
      floodMs,
      hitTimeLimit,
      senderErrors,
      firstErrors,
      senderClosed,
      receiverClosed,
      streamErrors,
      rssBeforeKiB,
      rssPeakKiB,
      rssPeakAfterDropKiB: Math.max(sampler.peak, rssAfterReceiverGoneKiB),
      rssEndKiB,
      rssAfterKiB,
      rssAfterReceiverGoneKiB,
      floodCpuMs,
      pingsSent: during.sent,
      pingsAnswered: rtts.length,
      pingP50Ms: percentile(rtts, 50),
      pingP99Ms: percentile(rtts, 99),
      pingMaxMs: rtts.length ? Math.max(...rtts) : NaN,
      pingsAfterSent: after.sent,
      pingsAfterAnswered: after.rtts.length,
      pingAfterMaxMs: after.rtts.length ? Math.max(...after.rtts) : NaN,
      exitCode: await server.stop(),
      serverOutput: server.output().slice(-2000),
    };
  } catch (e) {
    sampler.stop();
    for (const c of conns) c.destroy();
    await server.stop();
    throw new Error(`${(e as Error).message}\nserver output:\n${server.output()}`);
  }
}

/** One log line (plus errors and server output) for a finished run. */
export function describeFloodRun(r: FloodRun): string {
  const mb = (r.sentBytes / 1e6).toFixed(1);
  return `${r.sent}/${r.messages} messages (${mb} MB) taken in ${seconds(r.floodMs)}` +
    `${r.hitTimeLimit ? " (time limit)" : ""}, ${r.senderErrors} errors to the sender, ` +
    `sender ${r.senderClosed ? "closed" : "open"}, receiver ${
      r.receiverClosed ? "closed by the server" : "open"
    }; RSS ${mib(r.rssBeforeKiB)} → peak ${mib(r.rssPeakKiB)}, end ${mib(r.rssEndKiB)}, ` +
    `after ${mib(r.rssAfterKiB)}; receiver dropped: peak ${mib(r.rssPeakAfterDropKiB)}, ` +
    `${AFTER_MS / 1000} s later ${mib(r.rssAfterReceiverGoneKiB)}; ` +
    `server CPU ${seconds(r.floodCpuMs)}; pings during the flood ${r.pingsAnswered}/` +
    `${r.pingsSent} answered, p50 ${r.pingP50Ms.toFixed(1)} ms, p99 ${
      r.pingP99Ms.toFixed(1)
    } ms, ` +
    `max ${r.pingMaxMs.toFixed(1)} ms; in the ${AFTER_MS / 1000} s after ` +
    `${r.pingsAfterAnswered}/${r.pingsAfterSent} answered, max ${
      r.pingAfterMaxMs.toFixed(1)
    } ms; ` +
    `exit ${r.exitCode}` +
    details([...r.firstErrors, ...r.streamErrors], r.serverOutput);
}

/** The table rows for the flood runs. */
export function floodRows(runs: FloodRun[]): Row[] {
  const name = "flood";
  return [
    row(name, "RSS MiB before", runs.map((r) => r.rssBeforeKiB / 1024), 0),
    row(
      name,
      `RSS MiB peak, flood + ${AFTER_MS / 1000} s`,
      runs.map((r) => r.rssPeakKiB / 1024),
      0,
    ),
    row(name, "RSS MiB at end of flood", runs.map((r) => r.rssEndKiB / 1024), 0),
    row(name, `RSS MiB ${AFTER_MS / 1000} s after`, runs.map((r) => r.rssAfterKiB / 1024), 0),
    row(
      name,
      "RSS MiB peak after receiver dropped",
      runs.map((r) => r.rssPeakAfterDropKiB / 1024),
      0,
    ),
    row(
      name,
      `RSS MiB ${AFTER_MS / 1000} s after receiver dropped`,
      runs.map((r) => r.rssAfterReceiverGoneKiB / 1024),
      0,
    ),
    row(name, "messages sent", runs.map((r) => r.sent), 0, undefined, ""),
    row(name, "flood seconds", runs.map((r) => r.floodMs / 1000), 1, undefined, ""),
    row(name, "server CPU s during flood", runs.map((r) => r.floodCpuMs / 1000), 2, undefined, ""),
    row(name, "errors to sender", runs.map((r) => r.senderErrors), 0, undefined, ""),
    row(
      name,
      "receiver closed by server (1=yes)",
      runs.map((r) => +r.receiverClosed),
      0,
      undefined,
      "",
    ),
    row(name, "pings answered, during flood", runs.map((r) => r.pingsAnswered), 0, undefined, ""),
    row(name, "pings sent, during flood", runs.map((r) => r.pingsSent), 0, undefined, ""),
    row(name, "ping latency p50 ms, during flood", runs.map((r) => r.pingP50Ms), 1),
    row(name, "ping latency p99 ms, during flood", runs.map((r) => r.pingP99Ms), 1),
    row(name, "ping latency max ms, during flood", runs.map((r) => r.pingMaxMs), 1),
    row(
      name,
      "pings answered, 10 s after",
      runs.map((r) => r.pingsAfterAnswered),
      0,
      undefined,
      "",
    ),
    row(name, "pings sent, 10 s after", runs.map((r) => r.pingsAfterSent), 0, undefined, ""),
    row(name, "ping latency max ms, 10 s after", runs.map((r) => r.pingAfterMaxMs), 1),
    row(
      name,
      "sender closed by server (1=yes)",
      runs.map((r) => +r.senderClosed),
      0,
      undefined,
      "",
    ),
  ];
}
