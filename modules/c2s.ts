/**
 * Client connections (RFC 6120): listens on `c2s_ports` (plain TCP, with
 * STARTTLS offered by the tls module) and `c2s_direct_tls_ports` (XEP-0368),
 * opens streams, announces stream features, closes unauthenticated
 * connections after `c2s_timeout`, and closes every stream at shutdown.
 *
 * One instance serves the whole server (`meta.scope = "global"`); the host a
 * stream is for comes from its header's `to`.
 * @module
 */
import { createServer, type Server as NetServer, type Socket } from "node:net";
import { Connection } from "../core/net/connection.ts";
import type { Module } from "../core/moduleapi.ts";
import { Session } from "../core/session.ts";
import { StreamParser } from "../core/xml/parser.ts";
import { prepDomain } from "../core/jid.ts";
import { Stanza } from "../core/xml/stanza.ts";
import { isPromise } from "../core/events.ts";
import { unrefTimeout } from "../core/timers.ts";

export const meta = { scope: "global" };

export default function c2s(module: Module) {
  const server = module.server;
  const sessions = new Set<Session>();
  const listeners: NetServer[] = [];
  const stanzaSizeLimit = module.getOptionInteger("c2s_stanza_size_limit", 256 * 1024, {
    min: 10_000,
  });
  const timeoutSec = module.getOptionPeriod("c2s_timeout", 300);
  const defaultHost = server.config.hosts[0];

  function accept(socket: Socket, directTls: boolean) {
    const conn = new Connection(socket, false);
    const session = new Session(conn, module.log);
    sessions.add(session);
    const parser = new StreamParser({
      streamOpen: (attrs) => streamOpened(session, attrs),
      stanza: (el) => session.receive(el),
      streamClose: () => session.close(),
      error: (condition, text) => session.close({ condition, text }),
    }, { maxStanzaSize: stanzaSizeLimit });
    conn.onData = (chunk) => parser.feed(chunk);
    conn.onClose = () => session.destroy("connection closed");
    session.process = (stanza) => server.router.process(session, stanza);
    session.resetStream = () => {
      session.notopen = true;
      parser.reset();
    };
    const timer = timeoutSec === Infinity ? 0 : unrefTimeout(() => {
      if (session.type === "c2s_unauthed") {
        session.close({ condition: "connection-timeout", text: "Authentication took too long" });
      }
    }, timeoutSec * 1000);
    session.onDestroy = (reason) => {
      clearTimeout(timer);
      sessions.delete(session);
      conn.close();
      const error = reason === undefined
        ? undefined
        : typeof reason === "string"
        ? reason
        : reason.condition;
      const r = server.sessions.destroySession(session, error);
      if (isPromise(r)) r.catch((e) => module.log.error("destroy failed: {error}", { error: e }));
    };
    if (directTls) {
      const tls = server.tls.peek(defaultHost);
      if (!tls) return session.close("internal-server-error");
      // XEP-0368: the certificate of the host the client names (SNI), else the first host's.
      conn.startTls(tls.context, (name) => {
        const host = prepDomain(name);
        return host === undefined ? undefined : server.tls.peek(host)?.context;
      });
      session.secure = true;
    }
  }

  function streamOpened(session: Session, attrs: Record<string, string>) {
    const to = attrs.to === undefined ? undefined : prepDomain(attrs.to);
    const host = to === undefined ? undefined : server.hosts.get(to);
    session.notopen = false; // the header is in: errors now go inside this stream
    const header = (from: string) =>
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " +
      "xmlns:stream='http://etherx.jabber.org/streams' id='" + session.streamid +
      "' from='" + from + "' version='1.0' xml:lang='en'>";
    session.streamid = crypto.randomUUID();
    if (!host || host.type !== "local") {
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
    if (attrs.version === undefined || !attrs.version.startsWith("1.")) {
      return session.close({ condition: "unsupported-version", text: "XMPP 1.0 required" });
    }
    const features = new Stanza("stream:features");
    const event = { origin: session, features, stream: attrs };
    const r = host.events.fire("stream-features", event);
    if (isPromise(r)) return r.then(() => sendFeatures(session, features));
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
    for (const host of server.config.hosts) await server.tls.get(host);
    const interfaces = module.getOptionArray<string>("interfaces", ["*"]);
    for (const port of module.getOptionArray<number>("c2s_ports", [5222])) {
      for (const iface of interfaces) await listen(iface, port, false);
    }
    for (const port of module.getOptionArray<number>("c2s_direct_tls_ports", [5223])) {
      for (const iface of interfaces) await listen(iface, port, true);
    }
  });

  function listen(iface: string, port: number, directTls: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const srv = createServer({ pauseOnConnect: false }, (socket) => accept(socket, directTls));
      srv.once("error", (e) => {
        reject(new Error(`c2s cannot listen on ${iface}:${port}: ${(e as Error).message}`));
      });
      const onListening = () => {
        const addr = srv.address();
        const where = typeof addr === "object" && addr ? `${addr.address}:${addr.port}` : port;
        module.log.info("c2s listening on {where}{tls}", {
          where,
          tls: directTls ? " (direct TLS)" : "",
        });
        listeners.push(srv);
        resolve();
      };
      if (iface === "*") srv.listen({ port, backlog: 511 }, onListening);
      else srv.listen({ port, host: iface, backlog: 511 }, onListening);
    });
  }

  module.hookGlobal("server-stopping", async (event) => {
    for (const l of listeners) l.close();
    listeners.length = 0;
    const open = [...sessions].map((s) =>
      new Promise<void>((resolve) => {
        if (s.conn.closed) return resolve();
        s.conn.socket.once("close", () => resolve());
        unrefTimeout(resolve, 2000);
      })
    );
    for (const s of [...sessions]) {
      s.close({ condition: "system-shutdown", text: event?.reason ?? "Server shutting down" });
    }
    await Promise.all(open);
  }, -100);

  /** The addresses listened on, for tests and logs. */
  module.exports.addresses = () => listeners.map((l) => l.address());
  module.exports.sessions = sessions;
}
