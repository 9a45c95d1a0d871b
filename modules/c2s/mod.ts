/**
 * Client connections (RFC 6120): listens on `c2s_ports` (plain TCP, with
 * STARTTLS offered by the tls module) and `c2s_direct_tls_ports` (XEP-0368,
 * ALPN `xmpp-client`) — or on the sockets systemd passed (socket
 * activation) — opens streams, announces stream features, and closes every
 * stream at shutdown.
 *
 * Limits (options in ./settings.ts), each refused with the stream error
 * RFC 6120 names:
 * - `c2s_unauthed_stanza_size_limit` (10,000) before authentication and
 *   `c2s_stanza_size_limit` (256 KiB) after; the parser's other caps;
 * - `c2s_timeout` (300 s): a stream not bound to a resource by then is closed;
 * - `c2s_max_unauthed_per_ip` (32) connections per address that have not bound
 *   a resource yet (authenticated or not), and
 *   `c2s_max_connections` in all (default: the open-file limit less 100);
 * - `max_send_buffer_size` (1 MiB) of output waiting for a client that reads
 *   too slowly, or `send_timeout` (180 s) without it taking any; past either
 *   the stream is closed and what was not written is delivered as to an
 *   unavailable resource (`delivery/failure`);
 * - `limits = { c2s = { rate = "100kb/s", burst = "2s" } }` (Prosody's
 *   mod_limits; on by default; `limits = false` turns them off), with
 *   `unlimited_jids`/`unlimited_users` exempt.
 *
 * When the configuration is reloaded (SIGHUP), reading pauses on every
 * stream until the hosts and modules are in place again; then the options
 * are read anew and the listeners follow the new ports.
 *
 * One instance serves the whole server (`meta.scope = "global"`); the host a
 * stream is for comes from its header's `to`.
 * @module
 */
import type { Socket } from "node:net";
import { addressGroup, clientAddress, Connection } from "../../core/net/connection.ts";
import type { Module } from "../../core/moduleapi.ts";
import { Session } from "../../core/session.ts";
import { StreamParser } from "../../core/xml/parser.ts";
import { prepDomain } from "../../core/jid.ts";
import { escapeAttr, Stanza } from "../../core/xml/stanza.ts";
import { isPromise } from "../../core/events.ts";
import { unrefTimeout } from "../../core/timers.ts";
import { FD_RESERVE, readSettings } from "./settings.ts";
import { C2sListeners } from "./listeners.ts";

export { parseRate } from "./settings.ts";

export const meta = { scope: "global" };

const STREAM_OPEN = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " +
  "xmlns:stream='http://etherx.jabber.org/streams'";
const STREAMS_NS = "urn:ietf:params:xml:ns:xmpp-streams";

export default function c2s(module: Module) {
  const log = module.log;
  const sessions = new Set<Session>();
  const defaultHost = module.localHosts()[0];
  let settings = readSettings(module);
  const listeners = new C2sListeners(log, (socket, directTls) => accept(socket, directTls));
  /** Unauthenticated connections per remote address. */
  const unauthed = new Map<string, number>();
  /** The connection serving each session (another one after a stream resumption). */
  const connections = new WeakMap<Session, { release(): void }>();
  /** Connections that came another way (a WebSocket), by transport name, for metrics. */
  const transports = new WeakMap<Connection, string>();
  const sent = module.stanzaCounters.sent;
  /** Open connections of a transport ("c2s" for TCP), counted when metrics are collected. */
  const countOf = (name: string) => () => {
    let n = 0;
    for (const s of sessions) if ((transports.get(s.conn) ?? "c2s") === name) n++;
    return n;
  };
  module.reportConnections("c2s", countOf("c2s"));
  module.reportConnections("websocket", countOf("websocket"));

  function countUnauthed(ip: string, delta: number) {
    const n = (unauthed.get(ip) ?? 0) + delta;
    if (n <= 0) unauthed.delete(ip);
    else unauthed.set(ip, n);
  }

  /** Connections being turned away: they hold descriptors too, for a moment. */
  let refusing = 0;

  /** Turns a connection away before any stream: header, error, close. */
  function refuse(socket: Socket, condition: string, text: string) {
    socket.on("error", () => {});
    listeners.checkSoon(); // a burst may have run out of descriptors
    if (refusing >= FD_RESERVE / 2) return socket.destroy(); // no descriptors to spare
    refusing++;
    socket.once("close", () => refusing--);
    // The error goes out, then the descriptor is released at once.
    socket.once("finish", () => socket.destroy());
    socket.end(
      `${STREAM_OPEN} from='${escapeAttr(defaultHost)}' version='1.0'>` +
        `<stream:error><${condition} xmlns='${STREAMS_NS}'/>` +
        `<text xmlns='${STREAMS_NS}'>${text}</text></stream:error></stream:stream>`,
    );
    unrefTimeout(() => socket.destroy(), 2000);
  }

  /**
   * Serves a client connection: a TCP socket from our listeners, or another
   * transport that looks like one (a WebSocket: `secure` when it came over
   * HTTPS, `noStartTls` since it cannot be upgraded in place).
   */
  function accept(
    socket: Socket,
    directTls: boolean,
    transport: { secure?: boolean; noStartTls?: boolean; name?: string } = {},
  ) {
    const ip = clientAddress(socket);
    if (sessions.size >= settings.maxConnections) {
      log.warn("refusing a connection from {ip}: {n} connections open (c2s_max_connections)", {
        ip,
        n: sessions.size,
      });
      return refuse(socket, "resource-constraint", "The server is full; try again later");
    }
    const group = addressGroup(ip); // an IPv6 client counts by its /64
    if ((unauthed.get(group) ?? 0) >= settings.perIpLimit) {
      log.info("refusing a connection from {ip}: too many unauthenticated connections", { ip });
      return refuse(socket, "policy-violation", "Too many unauthenticated connections");
    }
    const { authedLimit, unauthedLimit, timeoutSec, unlimited } = settings;
    const conn = new Connection(socket, transport.secure ?? false, {
      ...settings.connection,
      noStartTls: transport.noStartTls,
    });
    if (transport.name) transports.set(conn, transport.name);
    /** The session this connection serves; another one after a stream resumption. */
    let current: Session | undefined = new Session(conn, log);
    const first = current;
    sessions.add(first);
    countUnauthed(group, 1);
    let countedUnauthed = true;
    /** The connection now serves a bound session: it no longer counts against its address. */
    const established = () => {
      if (!countedUnauthed) return;
      countedUnauthed = false;
      countUnauthed(group, -1);
    };
    const parser = new StreamParser({
      streamOpen: (attrs) => current && streamOpened(current, attrs),
      stanza: (el) => current?.receive(el),
      streamClose: () => current ? current.peerClosed() : conn.close(),
      error: (condition, text) => {
        // The stream is broken: nothing more will be parsed, so read no more.
        conn.stopReading();
        current?.close({ condition, text });
        conn.close();
      },
    }, { maxStanzaSize: unauthedLimit });
    conn.onData = (chunk) => parser.feed(chunk);
    conn.onError = (e) => {
      log.error("error reading from {ip}: {error}", { ip, error: e });
      conn.stopReading();
      current?.close("internal-server-error");
      conn.close();
    };
    conn.onOverflow = () => {
      log.info("closing {who}: {bytes} bytes wait for a client that does not read them", {
        who: current?.full_jid ?? ip,
        bytes: conn.buffered,
      });
      conn.stopReading();
      current?.close({ condition: "policy-violation", text: "Too much data waiting to be read" });
      conn.close(); // it does not read: no point waiting for its </stream:stream>
    };
    conn.onClose = (unsent) => {
      clearTimeout(timer);
      established();
      const session = current;
      current = undefined;
      if (!session) return;
      sessions.delete(session);
      // Stanzas that never got out go where stanzas for an unavailable resource go.
      const stanzas = unsent.filter((u) => u instanceof Stanza);
      if (session.destroyed) {
        if (stanzas.length) undelivered(session, stanzas); // closed already (a stream error)
        return;
      }
      // Stream management may keep the session for a client that comes back.
      if (!session.closing && session.onConnectionLost?.()) {
        if (stanzas.length) undelivered(session, stanzas); // to it again, queued this time
        return;
      }
      session.destroy("connection closed", stanzas);
    };
    const timer = timeoutSec === Infinity ? 0 : unrefTimeout(() => {
      const session = current;
      if (session?.type === "c2s_unauthed" || session?.type === "c2s_unbound") {
        session.close({
          condition: "connection-timeout",
          text: session.type === "c2s_unbound"
            ? "No resource was bound in time"
            : "Authentication took too long",
        });
      }
    }, timeoutSec * 1000);

    /** Sets up a session to be served by this connection. */
    const serve = (session: Session) => {
      session.closeTimeoutMs = settings.connection.closeTimeoutMs;
      session.sentCounter = sent;
      session.process = (stanza) => module.processStanza(session, stanza);
      // A connection counts against its address until it has bound a resource.
      session.onBound = established;
      session.onAuthenticated = () => {
        parser.setOptions({ maxStanzaSize: authedLimit });
        if (unlimited.has(`${session.username}@${session.host}`)) conn.setRate(undefined);
      };
      session.resetStream = () => {
        session.notopen = true;
        parser.reset();
        session.discardQueued();
        if (session.username !== undefined) session.onAuthenticated();
      };
      session.onDestroy = (reason, unsent) => {
        if (current === session) {
          sessions.delete(session);
          clearTimeout(timer);
          established();
        }
        const error = reason === undefined
          ? undefined
          : typeof reason === "string"
          ? reason
          : reason.condition;
        module.destroySession(session, error).catch((e) => {
          log.error("error ending session {jid}: {error}", { jid: session.full_jid, error: e });
        });
        // Nothing is delivered to an ended session any more, so these go elsewhere
        // now, ahead of anything sent to it from here on.
        if (unsent.length) undelivered(session, unsent);
      };
      session.moveConnectionTo = (target) => {
        if (current !== session || target === session) return;
        // The target's old connection, if it still has one, no longer serves it.
        const old = connections.get(target);
        old?.release();
        current = target;
        connections.set(target, handle);
        sessions.add(target);
        target.attach(conn, session.secure, session.streamid);
        target.tlsHost = session.tlsHost;
        serve(target);
        established();
        sessions.delete(session);
        session.destroy("resumed on this connection");
      };
    };
    /** This connection, as the session it serves knows it. */
    const handle = {
      /** Stops serving the current session (it moved elsewhere) and closes. */
      release() {
        if (current) sessions.delete(current);
        current = undefined;
        conn.stopReading();
        conn.write("</stream:stream>");
        conn.close();
      },
    };
    connections.set(first, handle);
    serve(first);
    if (directTls) {
      const tls = module.tlsFor(defaultHost);
      if (!tls) return first.close("internal-server-error");
      // XEP-0368: the certificate of the host the client names (SNI), else the first host's.
      first.tlsHost = defaultHost;
      conn.startTls(tls.context, (name) => {
        const host = prepDomain(name);
        const context = host === undefined ? undefined : module.tlsFor(host)?.context;
        if (context) first.tlsHost = host;
        return context;
      }, ["xmpp-client"]);
      first.secure = true;
    }
  }

  /** Fires `delivery/failure` for each stanza a dead connection never wrote. */
  function undelivered(session: Session, unsent: Stanza[]) {
    if (session.full_jid === undefined) return;
    for (const item of unsent) {
      try {
        const r = module.fireOn(session.host, "delivery/failure", { session, stanza: item });
        if (isPromise(r)) {
          Promise.resolve(r).catch((e) => log.error("delivery/failure: {error}", { error: e }));
        }
      } catch (e) {
        log.error("delivery/failure: {error}", { error: e });
      }
    }
  }

  /** RFC 6120 §4.7.5: answer with the lower of the client's version and 1.0. */
  function negotiateVersion(version: string | undefined): boolean {
    const m = version === undefined ? null : /^(\d+)\.(\d+)$/.exec(version);
    return m !== null && Number(m[1]) >= 1;
  }

  function streamOpened(session: Session, attrs: Record<string, string>) {
    const to = attrs.to === undefined ? undefined : prepDomain(attrs.to);
    session.notopen = false; // the header is in: errors now go inside this stream
    session.streamid = crypto.randomUUID();
    const header = (from: string) =>
      `${STREAM_OPEN} id='${session.streamid}' from='${escapeAttr(from)}' ` +
      "version='1.0' xml:lang='en'>";
    if (to === undefined || module.hostType(to) !== "local") {
      session.send(header(defaultHost));
      return session.close({
        condition: "host-unknown",
        text: `This server does not serve ${attrs.to ?? "(no 'to' given)"}`,
      });
    }
    if (session.host && session.host !== to) {
      session.send(header(session.host));
      return session.close({ condition: "host-unknown", text: "Host changed on restart" });
    }
    session.host = to!;
    session.send(header(session.host));
    if (!negotiateVersion(attrs.version)) {
      return session.close({ condition: "unsupported-version", text: "XMPP 1.0 required" });
    }
    const features = new Stanza("stream:features");
    const event = { origin: session, features, stream: attrs };
    const r = module.fireOn(session.host, "stream-features", event);
    if (isPromise(r)) {
      return Promise.resolve(r).then(() => sendFeatures(session, features), (e) => {
        log.error("stream-features failed: {error}", { error: e });
        session.close("internal-server-error");
      });
    }
    sendFeatures(session, features);
  }

  function sendFeatures(session: Session, features: Stanza) {
    if (features.children.length === 0 && session.type !== "c2s") {
      return session.close({
        condition: "undefined-condition",
        text: "No stream features to proceed with",
      });
    }
    session.send(features);
  }

  module.hookGlobal("server-started", async () => {
    for (const host of module.localHosts()) await module.loadTls(host);
    await listeners.update(settings);
  });

  // A configuration reload: no stanza is read while hosts and modules are replaced.
  module.hookGlobal("config-reloading", () => {
    for (const s of sessions) s.conn.suspend(true);
  });
  module.hookGlobal("config-reloaded", async () => {
    try {
      settings = readSettings(module);
      await listeners.update(settings);
    } finally {
      for (const s of sessions) s.conn.suspend(false);
    }
  });

  module.hookGlobal("host-deactivated", (host) => {
    for (const s of [...sessions]) {
      if (s.host === host) s.close({ condition: "host-gone", text: `${host} is no longer served` });
    }
  });

  module.hookGlobal("server-stopping", async (event) => {
    listeners.close();
    const open = [...sessions].map((s) =>
      new Promise<void>((resolve) => {
        if (s.conn.closed) return resolve();
        s.conn.socket.once("close", () => resolve());
        unrefTimeout(resolve, 2000);
      })
    );
    for (const s of [...sessions]) {
      s.close({ condition: "system-shutdown", text: event?.reason ?? "Server shutting down" });
      s.conn.close(); // no need to wait for the client's </stream:stream>
    }
    await Promise.all(open);
  }, -100);

  /** Serves a client connection that came another way (WebSocket). */
  module.exports.accept = (
    socket: Socket,
    transport: { secure?: boolean; noStartTls?: boolean; name?: string },
  ) => accept(socket, false, transport);
  /** The addresses listened on, for tests and logs. */
  module.exports.addresses = () => listeners.addresses();
  module.exports.sessions = sessions;
}
