/**
 * Stream Management (XEP-0198, `urn:xmpp:sm:3`), as Prosody's mod_smacks.
 *
 * After binding, a client sends `<enable/>` (with `resume='true'` to be able
 * to resume). From then on both sides count the stanzas they handle: `<r/>`
 * asks the other side for its count, `<a h='…'/>` answers it (counts wrap at
 * 2^32). What the server sent and the client has not acknowledged stays in a
 * queue.
 *
 * When the connection of a resumable session is lost (without either side
 * closing the stream), the session hibernates: it stays bound and online,
 * and what is sent to it is queued, for `smacks_hibernation_time` (600 s).
 * A client that authenticates on a new connection and sends `<resume/>`
 * with the session's id takes it over: the server answers `<resumed/>` and
 * sends again everything the client had not acknowledged, in order (the old
 * connection, if still open, is closed). When the window ends, or a session
 * with unacknowledged stanzas ends in any other way, those stanzas go where
 * stanzas for an unavailable resource go (`delivery/failure`: messages to the
 * account's other resources or to offline storage, requests answered with
 * errors) — none is dropped.
 *
 * Options (Prosody's names): `smacks_hibernation_time` (600 s),
 * `smacks_max_queue_size` (500: a connected client that leaves more
 * unacknowledged gets a `policy-violation` stream error; a hibernating
 * session that collects more ends its window early),
 * `smacks_max_unacked_stanzas` (0: how many stanzas may wait before the
 * server asks for an acknowledgement), `smacks_max_hibernated_sessions` (10
 * per account; the oldest one ends when another would exceed it).
 *
 * Events (on the host, as Prosody's): `smacks-hibernation-start`,
 * `smacks-hibernation-end` (`{ origin, queue }`), and
 * `smacks-hibernation-stanza-queued` (`{ origin, queue, stanza }`) for each
 * stanza queued while the session hibernates.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { Session, StreamFilter } from "../core/session.ts";
import type { Sasl2ResumeEvent } from "./saslauth/sasl2.ts";
import { element, type Stanza } from "../core/xml/stanza.ts";

const NS = "urn:xmpp:sm:3";
const STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const DELAY_NS = "urn:xmpp:delay";
/** Counts are sent modulo 2^32. */
const WRAP = 2 ** 32;
/** Ids of ended sessions remembered, to tell a client how far they got (`<failed h=…/>`). */
const OLD_SESSIONS = 1000;

/** Counted stanzas: message, presence and iq of the client namespace. */
function isStanza(el: Stanza): boolean {
  const ns = el.attrs.xmlns;
  return (ns === undefined || ns === "jabber:client") &&
    (el.name === "message" || el.name === "presence" || el.name === "iq");
}

/** A `<failed/>` with a stanza error condition (and the handled count, when known). */
function failed(condition: string, text?: string, h?: number): Stanza {
  const f = element("failed", h === undefined ? { xmlns: NS } : { xmlns: NS, h: String(h) })
    .tag(condition, { xmlns: STANZAS_NS }).up();
  if (text) f.textTag("text", text, { xmlns: STANZAS_NS });
  return f;
}

/** A count as the client sent it: a whole number below 2^32, else undefined. */
function parseCount(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n < WRAP ? n : undefined;
}

/** The stream management of one session. */
export class StreamManagement implements StreamFilter {
  /** Stanzas received from the client and handled (reported as `h`). */
  handled = 0;
  /** Stanzas sent and acknowledged, in all (not wrapped). */
  acked = 0;
  /** Unacknowledged stanzas, oldest first, and when each was sent (ms). */
  readonly queue: Stanza[] = [];
  readonly sentAt: number[] = [];
  /** The size of each queued stanza (characters of its XML), and their sum. */
  private readonly sizes: number[] = [];
  queuedBytes = 0;
  /** The resumption id, when the client asked to be able to resume. */
  token: string | undefined;
  /** An `<r/>` is on its way or about to be sent. */
  private ackRequested = false;
  private waiters: { upTo: number; resolve: (ok: boolean) => void }[] = [];
  hibernationTimer: { stop(): void } | undefined;
  hibernatedAt = 0;

  constructor(
    readonly session: Session,
    private readonly options: { maxQueue: number; maxQueueBytes: number; maxUnacked: number },
    private readonly onQueueFull: (sm: StreamManagement) => void,
    /** A stanza was queued while the session hibernates (push notifications act on it). */
    private readonly onQueuedWhileAway: (sm: StreamManagement, stanza: Stanza) => void = () => {},
  ) {}

  /** Stanzas sent in all (not wrapped). */
  get sent(): number {
    return this.acked + this.queue.length;
  }

  received(el: Stanza): void {
    if (isStanza(el)) this.handled = (this.handled + 1) % WRAP;
  }

  send(stanza: Stanza, xml: string): boolean {
    const conn = this.session.conn;
    if (!isStanza(stanza)) return this.session.hibernating ? false : conn.write(xml);
    this.queue.push(stanza);
    this.sentAt.push(Date.now());
    this.sizes.push(xml.length);
    this.queuedBytes += xml.length;
    if (
      this.queue.length > this.options.maxQueue || this.queuedBytes > this.options.maxQueueBytes
    ) {
      this.onQueueFull(this);
      return true; // queued: it goes where undelivered stanzas go
    }
    if (this.session.hibernating) {
      this.onQueuedWhileAway(this, stanza);
      return true;
    }
    conn.write(xml);
    if (this.queue.length > this.options.maxUnacked) this.requestAck();
    return true;
  }

  flush(): Promise<boolean> {
    if (this.session.destroyed) return Promise.resolve(false);
    if (this.queue.length === 0) return Promise.resolve(true);
    this.requestAck();
    return new Promise((resolve) => this.waiters.push({ upTo: this.sent, resolve }));
  }

  /** Asks the client for its count, once per batch of stanzas sent together. */
  requestAck(): void {
    if (this.ackRequested || this.session.hibernating) return;
    this.ackRequested = true;
    queueMicrotask(() => {
      if (this.session.destroyed || this.session.hibernating) {
        this.ackRequested = false;
        return;
      }
      this.session.conn.write(`<r xmlns='${NS}'/>`);
    });
  }

  /**
   * The client has handled `h` (mod 2^32) of the stanzas sent: drops them
   * from the queue. Returns false when `h` counts more than was sent.
   */
  acknowledge(h: number): boolean {
    const n = (h - this.acked % WRAP + WRAP) % WRAP;
    if (n > this.queue.length) return false;
    this.queue.splice(0, n);
    this.sentAt.splice(0, n);
    for (const size of this.sizes.splice(0, n)) this.queuedBytes -= size;
    this.acked += n;
    this.ackRequested = false;
    if (this.waiters.length) {
      const still = [];
      for (const w of this.waiters) {
        if (w.upTo <= this.acked) w.resolve(true);
        else still.push(w);
      }
      this.waiters = still;
      if (still.length) this.requestAck(); // someone waits for the rest
    }
    return true;
  }

  /** The session ended: whoever waits for acknowledgements will not get them. */
  abandon(): Stanza[] {
    for (const w of this.waiters) w.resolve(false);
    this.waiters = [];
    this.hibernationTimer?.stop();
    const left = this.queue.splice(0);
    this.sentAt.splice(0);
    this.sizes.splice(0);
    this.queuedBytes = 0;
    return left;
  }

  /** Sends every unacknowledged stanza again, in order, on the session's new connection. */
  resend(): void {
    const conn = this.session.conn;
    for (let i = 0; i < this.queue.length; i++) {
      const stanza = this.queue[i];
      // Messages that waited get the time they were sent (XEP-0203), as Prosody's do.
      if (stanza.name === "message" && !stanza.getChild("delay", DELAY_NS)) {
        const stamp = new Date(this.sentAt[i]).toISOString();
        conn.write(
          stanza.clone().tag("delay", { xmlns: DELAY_NS, from: this.session.host, stamp }).up()
            .toString(),
        );
      } else {
        conn.write(stanza.toString());
      }
    }
    this.ackRequested = false;
    if (this.queue.length) this.requestAck();
  }
}

export default function smacks(module: Module) {
  const hibernationTime = module.getOptionPeriod("smacks_hibernation_time", 600);
  const maxQueue = module.getOptionInteger("smacks_max_queue_size", 500, { min: 1 });
  // Not a Prosody option: the count alone lets 500 large stanzas hold 100+ MiB per
  // session. The default takes a full archive page (50 of the largest stanzas) unacked.
  const maxQueueBytes = module.getOptionInteger("smacks_max_queue_bytes", 16 * 1024 * 1024, {
    min: 1024,
  });
  const maxUnacked = module.getOptionInteger("smacks_max_unacked_stanzas", 0, { min: 0 });
  const maxHibernated = module.getOptionInteger("smacks_max_hibernated_sessions", 10, {
    min: 1,
  });
  const options = { maxQueue, maxQueueBytes, maxUnacked };

  const states = new WeakMap<Session, StreamManagement>();
  /** Resumable sessions by resumption id. */
  const byToken = new Map<string, StreamManagement>();
  /** Hibernating sessions, oldest first, per account. */
  const hibernating = new Map<string, Set<StreamManagement>>();
  /** Ended resumable sessions: their account and how many stanzas they handled. */
  const ended = new Map<string, { account: string; handled: number }>();
  /** Redeliveries of ended sessions' queues still under way (awaited at shutdown). */
  const redelivering = new Set<Promise<unknown>>();

  const account = (s: Session) => `${s.username}@${s.host}`;

  module.hook("stream-features", ({ origin, features }) => {
    if (origin.username !== undefined && !states.has(origin)) {
      features.tag("sm", { xmlns: NS }).up();
    }
  });

  /** Turns stream management on for a bound session; returns the `<enabled/>`. */
  function enable(origin: Session, resume: boolean): Stanza {
    const sm = new StreamManagement(origin, options, queueFull, (sm, stanza) => {
      const r = module.fireEvent("smacks-hibernation-stanza-queued", {
        origin: sm.session,
        queue: sm.queue,
        stanza,
      });
      if (r instanceof Promise) r.catch(module.logError);
    });
    const enabled = element("enabled", { xmlns: NS });
    if (resume) {
      sm.token = crypto.getRandomValues(new Uint8Array(18)).toBase64({ alphabet: "base64url" });
      byToken.set(sm.token, sm);
      enabled.attrs.id = sm.token;
      enabled.attrs.resume = "true";
      enabled.attrs.max = String(Math.floor(hibernationTime));
      origin.onConnectionLost = () => hibernate(sm);
    }
    states.set(origin, sm);
    origin.filter = sm;
    return enabled;
  }

  const wantsResume = (el: Stanza) => el.attrs.resume === "true" || el.attrs.resume === "1";

  module.hookTag(NS, "enable", (origin, stanza) => {
    if (origin.type !== "c2s") {
      origin.send(failed("unexpected-request", "Bind a resource first"));
      return true;
    }
    if (states.has(origin)) {
      origin.send(failed("unexpected-request", "Stream management is already enabled"));
      return true;
    }
    // (<enabled/> is sent before the filter counts anything: it is not a stanza.)
    origin.send(enable(origin, wantsResume(stanza)));
    return true;
  });

  // Inline with SASL2 and Bind2 (XEP-0388, XEP-0386), as Prosody's mod_sasl2_sm.
  module.hook("advertise-sasl-features", ({ features }: { features: Stanza }) => {
    features.tag("sm", { xmlns: NS }).up();
  });
  module.hook("advertise-bind-features", ({ features }: { features: Stanza }) => {
    features.tag("feature", { var: NS }).up();
  });
  module.hook(
    "enable-bind-features",
    ({ session, request, result }: { session: Session; request: Stanza; result: Stanza }) => {
      const el = request.getChild("enable", NS);
      if (el && !states.has(session)) result.addChild(enable(session, wantsResume(el)));
    },
  );

  module.hookTag(NS, "r", (origin) => {
    const sm = states.get(origin);
    if (!sm) origin.send(failed("unexpected-request", "Stream management is not enabled"));
    else origin.send(element("a", { xmlns: NS, h: String(sm.handled) }));
    return true;
  });

  module.hookTag(NS, "a", (origin, stanza) => {
    const sm = states.get(origin);
    if (!sm) return true; // nothing to acknowledge; harmless
    const h = parseCount(stanza.attrs.h);
    if (h === undefined) {
      origin.close({ condition: "bad-format", text: "Invalid 'h' in <a/>" });
    } else if (!sm.acknowledge(h)) {
      tooHigh(origin, h, sm);
    }
    return true;
  });

  /** The client claims to have handled more than was sent (XEP-0198 §4). */
  function tooHigh(origin: Session, h: number, sm: StreamManagement) {
    origin.send(
      `<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>` +
        `<handled-count-too-high xmlns='${NS}' h='${h}' send-count='${sm.sent % WRAP}'/>` +
        "</stream:error>",
    );
    origin.close();
  }

  /**
   * Checks a `<resume/>` from `origin`: the session to take over, or the
   * `<failed/>` to answer (or "too-high" for an h beyond what was sent).
   */
  function resumable(
    origin: Session,
    el: Stanza,
  ): { sm: StreamManagement; h: number } | Stanza | "too-high" {
    if (origin.username === undefined) return failed("not-authorized", "Authenticate first");
    if (origin.type === "c2s") {
      return failed("unexpected-request", "A bound session cannot resume another");
    }
    const previd = el.attrs.previd ?? "";
    const sm = byToken.get(previd);
    if (!sm || account(sm.session) !== account(origin)) {
      const old = ended.get(previd);
      const h = old && old.account === account(origin) ? old.handled : undefined;
      return failed("item-not-found", "No session to resume with this id", h);
    }
    const h = parseCount(el.attrs.h);
    if (h === undefined) return failed("bad-request", "Invalid 'h' in <resume/>");
    if ((h - sm.acked % WRAP + WRAP) % WRAP > sm.queue.length) return "too-high";
    return { sm, h };
  }

  /**
   * Moves `origin`'s connection onto the session being resumed; `answer`
   * puts `<resumed/>` on the wire (or into a SASL2 success); what follows it
   * (the unacknowledged stanzas) is returned to run after.
   */
  function takeOver(origin: Session, sm: StreamManagement, h: number, previd: string) {
    const session = sm.session;
    const wasHibernating = session.hibernating;
    endHibernation(sm);
    origin.moveConnectionTo(session);
    const resumed = element("resumed", { xmlns: NS, h: String(sm.handled), previd });
    return {
      session,
      resumed,
      after: () => {
        sm.acknowledge(h);
        sm.resend();
        module.log.debug("{jid} resumed its session ({n} stanzas sent again)", {
          jid: session.full_jid,
          n: sm.queue.length,
        });
        if (wasHibernating) {
          module.fireEvent("smacks-hibernation-end", { origin: session, queue: sm.queue });
        }
      },
    };
  }

  module.hookTag(NS, "resume", (origin, stanza) => {
    const r = resumable(origin, stanza);
    if (r === "too-high") {
      const sm = byToken.get(stanza.attrs.previd!)!;
      tooHigh(origin, parseCount(stanza.attrs.h)!, sm); // this stream closes; the session stays
      return true;
    }
    if (!("sm" in r)) {
      origin.send(r);
      return true;
    }
    const done = takeOver(origin, r.sm, r.h, stanza.attrs.previd!);
    done.session.send(done.resumed);
    done.after();
    return true;
  });

  module.hook("sasl2-resume", (event: Sasl2ResumeEvent) => {
    const r = resumable(event.session, event.request);
    if (r === "too-high") {
      event.success.addChild(failed("unexpected-request", "'h' is more than was sent"));
      return;
    }
    if (!("sm" in r)) {
      event.success.addChild(r);
      return;
    }
    const done = takeOver(event.session, r.sm, r.h, event.request.attrs.previd!);
    event.session = done.session;
    event.success.addChild(done.resumed);
    event.after.push(done.after);
  });

  function hibernate(sm: StreamManagement): boolean {
    const session = sm.session;
    if (!sm.token || session.destroyed) return false;
    session.hibernating = true;
    sm.hibernatedAt = Date.now();
    let mine = hibernating.get(account(session));
    if (!mine) hibernating.set(account(session), mine = new Set());
    mine.add(sm);
    if (mine.size > maxHibernated) {
      const oldest = mine.values().next().value!;
      expire(oldest, "too many hibernating sessions");
    }
    sm.hibernationTimer = module.addTimer(hibernationTime, () => {
      if (session.hibernating) expire(sm, "resumption timeout");
    });
    module.log.debug("{jid} hibernates ({n} unacknowledged)", {
      jid: session.full_jid,
      n: sm.queue.length,
    });
    const started = module.fireEvent("smacks-hibernation-start", {
      origin: session,
      queue: sm.queue,
    });
    if (started instanceof Promise) started.catch(module.logError);
    return true;
  }

  function endHibernation(sm: StreamManagement) {
    sm.hibernationTimer?.stop();
    sm.hibernationTimer = undefined;
    const mine = hibernating.get(account(sm.session));
    if (mine?.delete(sm) && mine.size === 0) hibernating.delete(account(sm.session));
  }

  /** The resumption window is over: the session ends, as if its connection just closed. */
  function expire(sm: StreamManagement, why: string) {
    endHibernation(sm);
    sm.session.destroy(why);
  }

  function queueFull(sm: StreamManagement) {
    const session = sm.session;
    module.log.info("{jid}: {n} stanzas ({bytes} bytes) unacknowledged; ending the session", {
      jid: session.full_jid,
      n: sm.queue.length,
      bytes: sm.queuedBytes,
    });
    if (session.hibernating) expire(sm, "too many stanzas waiting");
    else {
      session.close({ condition: "policy-violation", text: "Too many unacknowledged stanzas" });
    }
  }

  // Whatever the session's end, what it did not acknowledge goes where stanzas
  // for an unavailable resource go — at once, in order, ahead of anything sent
  // to the account from now on (nothing is delivered to an ended session).
  module.hook("pre-resource-unbind", ({ session }: { session: Session }) => {
    const sm = states.get(session);
    if (!sm) return;
    states.delete(session);
    endHibernation(sm);
    session.filter = undefined;
    session.onConnectionLost = undefined;
    if (sm.token) {
      byToken.delete(sm.token);
      ended.set(sm.token, { account: account(session), handled: sm.handled });
      if (ended.size > OLD_SESSIONS) ended.delete(ended.keys().next().value!);
    }
    const left = sm.abandon();
    if (left.length === 0) return;
    module.log.debug("{jid} ended with {n} stanzas unacknowledged; delivering them elsewhere", {
      jid: session.full_jid,
      n: left.length,
    });
    for (const stanza of left) {
      try {
        const r = module.fireEvent("delivery/failure", { session, stanza });
        if (r instanceof Promise) {
          const done = r.catch((e) => module.log.error("delivery/failure: {error}", { error: e }));
          redelivering.add(done);
          done.finally(() => redelivering.delete(done));
        }
      } catch (e) {
        module.log.error("delivery/failure: {error}", { error: e });
      }
    }
  }, 100);

  // At shutdown, hibernating sessions end first, so their queues reach offline storage.
  module.hookGlobal("server-stopping", async () => {
    for (const mine of [...hibernating.values()]) {
      for (const sm of [...mine]) expire(sm, "server shutting down");
    }
    while (redelivering.size) await Promise.all([...redelivering]);
  }, 10);
}
