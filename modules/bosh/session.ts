/**
 * One BOSH session (XEP-0124): the request ids, the requests held open for
 * the server to answer with, and the c2s stream behind them.
 *
 * - **Request ids.** A request carries the next `rid`; one up to
 *   `requests` ahead waits for the ones before it (HTTP connections may
 *   overtake each other). A `rid` already answered gets the same answer
 *   again (the client lost it); one outside the window ends the session
 *   with `item-not-found`.
 * - **Holding.** At most `hold` requests wait for something to say; a new
 *   one releases the oldest, `wait` seconds release it empty, and the
 *   server's output goes out in the oldest one held.
 * - **Inactivity.** With no request held for `inactivity` seconds (or the
 *   `pause` the client asked for), the client is gone: the stream ends.
 * - **Output** is bounded: while the client is not collecting it, c2s's
 *   writes wait (`output`), and its send buffer limits apply.
 *
 * @example
 * ```ts
 * const session = new BoshSession(sid, limits, header, log);
 * c2s.accept(session.socket, { secure, noStartTls: true });
 * const answer = await session.request(rid, attrs, payload); // a <body/>
 * ```
 * @module
 */
import type { Logger } from "../../core/log.ts";
import { unrefTimeout } from "../../core/timers.ts";
import { escapeAttr } from "../../core/xml/stanza.ts";
import { startTagAttributes, toClient } from "../websocket/framing.ts";
import { body, terminateBody, XBOSH_NS } from "./body.ts";
import { BoshSocket } from "./socket.ts";

/** What a session was given (XEP-0124 §7.1), in seconds where they are times. */
export interface BoshTerms {
  wait: number;
  hold: number;
  requests: number;
  inactivity: number;
  polling: number;
  maxpause: number;
  secure: boolean;
  /** The VirtualHost the client asked for, and its language. */
  to: string;
  lang?: string;
}

/** Output waiting for a request, beyond which c2s's writes wait. */
const HIGH_WATER = 64 * 1024;
/** Input c2s has not read yet (reading paused) beyond which the client is cut off. */
const MAX_UNREAD = 1 << 20;

interface Held {
  rid: number;
  answer: (text: string) => void;
  timer: number;
}

export class BoshSession {
  readonly socket: BoshSocket;
  /** The last request id taken in order. */
  private lastRid: number;
  private held: Held[] = [];
  /** Requests that came before their turn, waiting for it. */
  private early = new Map<number, () => void>();
  /** The last answers, by request id, to send again when a client lost one. */
  private answers = new Map<number, string>();
  private output: string[] = [];
  private outputBytes = 0;
  private drained: Array<() => void> = [];
  private flushScheduled = false;
  /** The session's attributes, for the first answer (XEP-0124 §7.1). */
  private creation: Record<string, string | undefined> | undefined;
  private streamId: string | undefined;
  private from: string | undefined;
  /** Why the session ended (undefined while it runs); its last words wait in `output`. */
  private ended: { condition?: string } | undefined;
  private idleTimer: number | undefined;
  private lastEmptyPoll = 0;
  /** Told when the session is over, so its sid is forgotten. */
  onGone: () => void = () => {};

  constructor(
    readonly sid: string,
    firstRid: number,
    readonly terms: BoshTerms,
    ip: string,
    private log: Logger,
  ) {
    this.lastRid = firstRid - 1;
    this.socket = new BoshSocket(ip, (text, done) => this.write(text, done), () => this.closed());
    this.creation = {
      sid,
      wait: String(terms.wait),
      hold: String(terms.hold),
      requests: String(terms.requests),
      inactivity: String(terms.inactivity),
      polling: String(terms.polling),
      maxpause: String(terms.maxpause),
      ver: "1.11",
      secure: String(terms.secure),
      "xmlns:xmpp": XBOSH_NS,
      "xmpp:version": "1.0",
      "xmpp:restartlogic": "true",
    };
  }

  /** Opens the c2s stream (at creation, and on each `xmpp:restart`). */
  openStream(): void {
    const lang = this.terms.lang ? ` xml:lang='${escapeAttr(this.terms.lang)}'` : "";
    this.socket.feed(
      "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'" +
        ` to='${escapeAttr(this.terms.to)}' version='1.0'${lang}>`,
    );
  }

  /** Serves one request; resolves to the `<body/>` to answer it with. */
  async request(
    rid: number,
    attrs: Record<string, string | undefined>,
    payload: string,
  ): Promise<string> {
    if (this.ended) return this.finalAnswer();
    if (rid <= this.lastRid) return this.repeat(rid);
    if (rid > this.lastRid + this.terms.requests) {
      return this.fail("item-not-found", `rid ${rid} is too far ahead of ${this.lastRid}`);
    }
    if (rid > this.lastRid + 1) {
      // Its turn comes when the ones before it arrive, within `wait`.
      if (this.early.has(rid)) return this.fail("item-not-found", `rid ${rid} sent twice`);
      const inTime = await new Promise<boolean>((resolve) => {
        const timer = unrefTimeout(() => resolve(false), this.terms.wait * 1000);
        this.early.set(rid, () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      this.early.delete(rid);
      if (this.ended) return this.finalAnswer();
      if (!inTime) return this.fail("item-not-found", `rid ${rid - 1} never came`);
    }
    this.lastRid = rid;
    this.early.get(rid + 1)?.();
    return this.take(rid, attrs, payload);
  }

  /** A request in its turn: its content goes to c2s, and it is held for the answer. */
  private take(rid: number, attrs: Record<string, string | undefined>, payload: string) {
    const first = this.creation !== undefined;
    this.stopIdleTimer();
    if (attrs.type === "terminate") {
      this.socket.feed(payload);
      this.socket.feed("</stream:stream>");
      this.end(undefined);
      for (const h of [...this.held]) this.answer(h);
      this.gone();
      return Promise.resolve(terminateBody());
    }
    if (this.terms.hold === 0 && payload === "" && attrs.pause === undefined && !first) {
      // A polling client (hold 0) may not poll more often than `polling` (XEP-0124 §12).
      const now = Date.now();
      if (now - this.lastEmptyPoll < this.terms.polling * 1000) {
        return Promise.resolve(this.fail("policy-violation", "polling too often"));
      }
      this.lastEmptyPoll = now;
    }
    if (attrs["xmpp:restart"] === "true") this.openStream();
    this.socket.feed(payload);
    if (this.socket.unread > MAX_UNREAD) {
      return Promise.resolve(this.fail("policy-violation", "too much input waiting to be read"));
    }
    const pause = attrs.pause !== undefined ? Number(attrs.pause) : undefined;
    return new Promise<string>((resolve) => {
      const held: Held = {
        rid,
        answer: resolve,
        timer: unrefTimeout(() => this.answer(held), this.terms.wait * 1000),
      };
      this.held.push(held);
      if (pause !== undefined && Number.isFinite(pause) && pause > 0) {
        // Paused (§10): every request is answered now, and the client may be away that long.
        for (const h of [...this.held]) this.answer(h);
        this.startIdleTimer(Math.min(pause, this.terms.maxpause));
        return;
      }
      while (this.held.length > this.terms.hold) this.answer(this.held[0]);
      if (this.output.length > 0) this.scheduleFlush();
    });
  }

  /** A request id seen before: its answer again, if it is still known. */
  private repeat(rid: number): string {
    const again = this.answers.get(rid);
    if (again !== undefined) return again;
    const held = this.held.find((h) => h.rid === rid);
    if (held) {
      // The client gave up on a request still held: it is answered (empty) as the copy is.
      this.answer(held);
      return this.answers.get(rid)!;
    }
    return this.fail("item-not-found", `rid ${rid} is no longer known`);
  }

  /** Answers a held request with the output waiting (possibly none). */
  private answer(held: Held): void {
    const i = this.held.indexOf(held);
    if (i < 0) return;
    this.held.splice(i, 1);
    clearTimeout(held.timer);
    const attrs = this.creation ?? {};
    if (this.creation) {
      attrs.from = this.from ?? this.terms.to;
      attrs.authid = this.streamId;
      this.creation = undefined;
    }
    const text = this.ended ? this.finalBody() : body(attrs, this.takeOutput());
    held.answer(this.remember(held.rid, text));
    if (this.ended) {
      for (const h of [...this.held]) this.answer(h);
      this.gone();
      return;
    }
    if (this.held.length === 0) this.startIdleTimer(this.terms.inactivity);
  }

  private remember(rid: number, text: string): string {
    this.answers.set(rid, text);
    // Keep only the window the client may ask again for.
    for (const r of this.answers.keys()) {
      if (r <= this.lastRid - this.terms.requests) this.answers.delete(r);
    }
    return text;
  }

  private takeOutput(): string {
    const text = this.output.join("");
    this.output = [];
    this.outputBytes = 0;
    for (const wake of this.drained.splice(0)) wake();
    return text;
  }

  /** What c2s writes: kept for the next answer (the stream header is not sent). */
  private write(text: string, done: (e?: Error | null) => void): void {
    if (this.ended) return done(new Error("BOSH session ended"));
    for (const frame of toClient(text)) {
      if (frame.startsWith("<open ")) {
        const a = startTagAttributes(frame);
        this.streamId = a.id;
        this.from = a.from;
      } else if (frame.startsWith("<close ")) {
        this.end(
          this.output.some((o) => o.startsWith("<stream:error"))
            ? "remote-stream-error"
            : undefined,
        );
      } else {
        this.output.push(frame);
        this.outputBytes += frame.length;
      }
    }
    if (this.ended) {
      this.flushNow();
      return done();
    }
    this.scheduleFlush();
    if (this.outputBytes <= HIGH_WATER) return done();
    // The client is not collecting: c2s's next write waits (its buffer limits apply).
    this.drained.push(() => done());
  }

  /** Output is sent on the next turn, so what c2s writes at once goes in one answer. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setTimeout(() => {
      this.flushScheduled = false;
      this.flushNow();
    }, 0);
  }

  private flushNow(): void {
    if (this.held.length > 0 && (this.output.length > 0 || this.ended)) this.answer(this.held[0]);
  }

  /** The c2s stream is over (closed by the server, or the socket destroyed). */
  private closed(): void {
    if (!this.ended) this.end(undefined);
    this.flushNow();
  }

  private end(condition: string | undefined): void {
    if (this.ended) return;
    this.ended = { condition };
    this.stopIdleTimer();
    for (const wake of this.drained.splice(0)) wake();
    for (const wake of this.early.values()) wake();
    if (!this.socket.destroyed) {
      this.socket.push(null);
      // Let c2s read what came before the end, then let the socket go.
      setTimeout(() => this.socket.destroy(), 0);
    }
    // Its last words wait for the next request, within `wait`; then the sid is forgotten.
    unrefTimeout(() => this.gone(), this.terms.wait * 1000);
  }

  /** The answer for a session that has ended: its last output, and `terminate`. */
  private finalAnswer(): string {
    const text = this.finalBody();
    this.gone();
    return text;
  }

  private finalBody(): string {
    return terminateBody(this.ended?.condition, this.takeOutput());
  }

  /** Ends the session for a client's mistake; the answer says why. */
  private fail(condition: string, why: string): string {
    this.log.debug("BOSH session {sid} ended: {why}", { sid: this.sid, why });
    this.output = [];
    this.end(condition);
    for (const h of [...this.held]) this.answer(h);
    this.gone();
    return terminateBody(condition);
  }

  private startIdleTimer(seconds: number): void {
    this.stopIdleTimer();
    this.idleTimer = unrefTimeout(() => {
      this.log.debug("BOSH session {sid}: no request for {s} s", { sid: this.sid, s: seconds });
      this.end(undefined);
      this.gone();
    }, seconds * 1000);
  }

  private stopIdleTimer(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private gone(): void {
    this.stopIdleTimer();
    this.onGone();
  }
}
