/**
 * A client session, with the fields Prosody's `doc/session.txt` defines, under
 * the same names so a module ported from Lua reads the same:
 * connected = `full_jid` set; available = `presence` set; interested =
 * `interested` set (gets roster pushes).
 *
 * Stanzas a session receives are processed strictly in order: the next one
 * starts only after the previous one's whole dispatch, awaits included. A
 * stanza whose handlers are all synchronous costs no promise at all.
 *
 * @example
 * ```ts
 * session.send(message({ to: session.full_jid, type: "chat" }, "hello"));
 * session.close({ condition: "policy-violation", text: "slow down" });
 * ```
 * @module
 */
import type { Connection } from "./net/connection.ts";
import type { Logger } from "./log.ts";
import { isPromise } from "./events.ts";
import type { StanzaCounter } from "./metrics.ts";
import { type Stanza, streamErrorXml } from "./xml/stanza.ts";

export type SessionType = "c2s_unauthed" | "c2s_unbound" | "c2s" | "c2s_destroyed";

/** How a session closes: nothing (clean), a stream error condition, or one with text. */
export type CloseReason = undefined | string | { condition: string; text?: string };

export const STREAMS_NS = "urn:ietf:params:xml:ns:xmpp-streams";

let counter = 0;

/** What stream management puts between a session and its connection. */
export interface StreamFilter {
  /** Sees each element the client sent, in order, just before it is handled. */
  received(element: Stanza): void;
  /** Takes a stanza the session sends (and its serialisation); false if it cannot go out. */
  send(stanza: Stanza, xml: string): boolean;
  /** Resolves true once everything sent so far is acknowledged; false if the session ends first. */
  flush(): Promise<boolean>;
}

export class Session {
  readonly id: string;
  type: SessionType = "c2s_unauthed";
  conn: Connection;
  /** True until the stream header has arrived. */
  notopen = true;
  /** The host this stream is for (the stream header's `to`). */
  host = "";
  username: string | undefined = undefined;
  resource: string | undefined = undefined;
  full_jid: string | undefined = undefined;
  priority = 0;
  /** Last undirected available presence; undefined when unavailable. */
  presence: Stanza | undefined = undefined;
  /** Set when the client fetched its roster: it gets roster pushes. */
  interested = false;
  roster: unknown = undefined;
  /** Directed presence sent by this resource, by full JID (presence module). */
  directed: Set<string> | undefined = undefined;
  secure: boolean;
  /** The host whose certificate TLS presented (SNI on direct TLS), for channel binding. */
  tlsHost: string | undefined = undefined;
  streamid = "";
  /** Becomes true when the session is gone; stale references see it. */
  destroyed = false;
  /** Set by `close()` while waiting for the peer's `</stream:stream>`. */
  closing = false;
  log: Logger;
  /** Free slot for modules: `session.ext.carbons = true`. */
  ext: Record<string, unknown> | undefined = undefined;
  /**
   * True while stream management keeps the session bound although its
   * connection is gone (XEP-0198 resumption window): it stays online and
   * what is sent to it is queued for a resuming client.
   */
  hibernating = false;

  /**
   * Set by stream management (smacks module): sees every element received
   * and takes every stanza sent, to count and queue them.
   */
  filter: StreamFilter | undefined = undefined;
  /**
   * Set by client state indication (csi module) while the client is
   * inactive: may hold a stanza back (returns true); held stanzas go out
   * later, in order, through {@link deliver}.
   */
  hold: ((stanza: Stanza, xml: string) => boolean) | undefined = undefined;
  /**
   * Set by the blocklist module: whether the account refuses stanzas from
   * this JID. Senders that reach sessions without the router (fan-outs:
   * rooms, PEP) ask it; routed stanzas meet the blocklist's own hooks.
   */
  refuses: ((from: string) => boolean) | undefined = undefined;
  /**
   * Set by stream management: called when the connection is lost without
   * either side closing the stream; returning true keeps the session
   * (hibernating) instead of ending it.
   */
  onConnectionLost: (() => boolean) | undefined = undefined;

  /** Counts the stanzas sent to this client (metrics); set by the c2s module. */
  sentCounter: StanzaCounter | undefined = undefined;

  /** Handles one incoming element; set by the c2s module. */
  process: (stanza: Stanza) => unknown = () => undefined;
  /** Starts a new stream on the same connection (after STARTTLS and SASL); set by c2s. */
  resetStream: () => void = () => {};
  /** The SASL exchange in progress (saslauth module). */
  sasl_handler: unknown = undefined;
  /** Runs when a resource is bound (the session manager calls it); set by the c2s module. */
  onBound: () => void = () => {};
  /**
   * Runs once SASL2 (XEP-0388) has authenticated the stream, which goes on
   * without a restart: the transport applies the limits of authenticated
   * streams (a stream restart after RFC 6120 SASL does it too).
   */
  onAuthenticated: () => void = () => {};
  /**
   * Runs when the session ends, with the stanzas sent to it that never got
   * out (they go where stanzas for an unavailable resource go); set by the
   * c2s module.
   */
  onDestroy: (reason: CloseReason, unsent: Stanza[]) => void = () => {};
  /**
   * Moves this session's connection onto `target` (stream resumption): from
   * then on the connection serves `target`, and this session is retired.
   * Set by the transport (c2s).
   */
  moveConnectionTo: (target: Session) => void = () => {
    throw new Error("this transport cannot move its connection");
  };

  private queue: Stanza[] | undefined = undefined;
  private busy = false;

  constructor(conn: Connection, log: Logger) {
    this.id = "c2s" + (++counter).toString(36);
    this.conn = conn;
    this.secure = conn.secure;
    this.log = log;
  }

  /** The client's address (IPv4 as a.b.c.d also on dual-stack sockets). */
  get ip(): string {
    return this.conn.ip;
  }

  /** What per-address limits count this client by (its IPv6 /64, or its IPv4 address). */
  get ipGroup(): string {
    return this.conn.ipGroup;
  }

  /** How long `close()` waits for the peer's `</stream:stream>` (ms; `c2s_close_timeout`). */
  closeTimeoutMs = 5000;

  /**
   * Sends a stanza (`xml`: its serialisation, when the caller already has it)
   * or raw XML. Returns false when the session is gone. A stanza that never
   * gets out (the connection dies first) is handed back to the server as a
   * delivery failure, as if this resource had been unavailable.
   */
  send(stanza: Stanza | string, xml?: string): boolean {
    if (this.destroyed) return false;
    if (typeof stanza === "string") return this.conn.write(stanza);
    this.sentCounter?.count(stanza.name);
    xml ??= stanza.toString();
    if (this.hold?.(stanza, xml)) return true;
    return this.deliver(stanza, xml);
  }

  /** Sends a stanza past {@link hold} (what was held, when it is let go). */
  deliver(stanza: Stanza, xml: string): boolean {
    if (this.destroyed) return false;
    if (this.filter) return this.filter.send(stanza, xml);
    return this.conn.write(xml, stanza);
  }

  /**
   * Resolves true once everything sent so far is safe: written to the
   * network, or with stream management acknowledged by the client; false if
   * the session ended first. Never await it while handling one of this
   * session's own stanzas: the acknowledgement is read only after that.
   */
  flush(): Promise<boolean> {
    return this.filter ? this.filter.flush() : this.conn.flush();
  }

  /**
   * Bytes sent but not yet taken by the network. Code that sends much at
   * once waits for `flush()` when this grows (the output cap closes streams
   * whose backlog grows past `max_send_buffer_size`).
   */
  get backlog(): number {
    return this.conn.buffered;
  }

  /**
   * Drops what the old stream had queued behind the element that restarts
   * the stream (STARTTLS, SASL success): it was sent before the restart and
   * must not be taken as part of the new stream (RFC 6120 §5.4.3.3, §6.4.6).
   */
  discardQueued(): void {
    if (this.queue?.length) {
      this.log.debug("dropping {n} elements sent before the stream restart", {
        n: this.queue.length,
      });
    }
    this.queue = undefined;
  }

  /** Takes one parsed element into the session's ordered processing. */
  receive(stanza: Stanza): void {
    if (this.destroyed) return;
    if (this.busy) {
      (this.queue ??= []).push(stanza);
      return;
    }
    this.run(stanza);
  }

  private run(stanza: Stanza): void {
    let r: unknown;
    try {
      this.filter?.received(stanza);
      r = this.process(stanza);
    } catch (e) {
      this.log.error("error processing stanza: {error}", { error: e });
      return;
    }
    if (!isPromise(r)) return;
    this.busy = true;
    this.conn.hold(true); // read no more until this stanza is done
    r.then(() => this.next(), (e) => {
      this.log.error("error processing stanza: {error}", { error: e });
      this.next();
    });
  }

  private next(): void {
    this.busy = false;
    const q = this.queue;
    while (q && q.length && !this.busy && !this.destroyed) this.run(q.shift()!);
    if (this.busy) return;
    if (this.peerHasClosed) return this.peerClosed(); // its last stanzas are done
    this.conn.hold(false);
  }

  /** The peer sent `</stream:stream>` while stanzas before it were still being handled. */
  private peerHasClosed = false;

  /**
   * Closes the stream: with a stream error when `reason` names one, then
   * `</stream:stream>`, and retires the session at once. The connection stays
   * open up to `closeTimeoutMs` for the peer's own `</stream:stream>`
   * (RFC 6120 §4.4); {@link peerClosed} ends it when that arrives.
   */
  close(reason?: CloseReason): void {
    if (this.destroyed || this.closing) return;
    this.closing = true;
    if (this.notopen) {
      // RFC 6120 §4.9.1.1: an error before the header still opens a stream first.
      this.conn.write(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " +
          "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
      );
      this.notopen = false;
    }
    if (reason) {
      const condition = typeof reason === "string" ? reason : reason.condition;
      const text = typeof reason === "string" ? undefined : reason.text;
      this.log.debug("closing stream: {condition} {text}", { condition, text });
      this.conn.write(streamErrorXml(condition, text));
    }
    this.conn.write("</stream:stream>");
    this.conn.closeAfter(this.closeTimeoutMs);
    this.destroy(reason);
  }

  /**
   * The peer sent `</stream:stream>`: once the stanzas it sent before are
   * handled, answer it if need be and end the connection.
   */
  peerClosed(): void {
    if (this.busy) {
      // Stanzas sent before the close are handled first, in order (as Prosody does).
      this.peerHasClosed = true;
      return;
    }
    this.close();
    this.conn.close();
  }

  /**
   * Retires the session: it is removed everywhere and its sends become
   * no-ops. `unsent`: stanzas sent to it that never got out.
   */
  destroy(reason?: CloseReason, unsent: Stanza[] = []): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.hibernating = false;
    this.queue = undefined;
    this.onDestroy(reason, unsent);
    this.type = "c2s_destroyed";
  }

  /**
   * Takes the session over onto another connection (stream resumption):
   * called by the transport once `conn` serves this session.
   */
  attach(conn: Connection, secure: boolean, streamid: string): void {
    this.conn = conn;
    this.secure = secure;
    this.streamid = streamid;
    this.notopen = false;
    this.closing = false;
    this.peerHasClosed = false;
    this.hibernating = false;
  }
}
