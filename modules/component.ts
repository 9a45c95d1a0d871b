/**
 * External components (XEP-0114, `jabber:component:accept`), as Prosody's
 * mod_component: a gateway or bot runs as its own process and serves a
 * domain of this server. Configured by its secret alone:
 *
 * ```ts
 * components: { "gateway.example.com": { component_secret: "s3cret" } },
 * ```
 *
 * It connects to `component_ports` (5347) on `component_interfaces`
 * ("127.0.0.1", as Prosody: components are usually on the same machine),
 * opens a stream to its domain and proves it knows the secret with the
 * handshake (hex SHA-1 of the stream id and the secret); a wrong one gets
 * `not-authorized`, an unknown domain `host-unknown`, a second connection
 * for a domain already served `conflict`. Once in, everything for the
 * domain (its own disco included) goes to it; what it sends is routed from
 * it, but only from addresses in its domain (others get `not-allowed`, a
 * stanza without `to` `bad-request`). While it is away, stanzas for it get
 * `remote-server-timeout` (as Prosody). A configuration reload keeps it
 * connected; one that drops its domain disconnects it (`host-gone`).
 * @module
 */
import { createHash, randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import type { Module } from "../core/moduleapi.ts";
import type { Origin, StanzaEvent } from "../core/router.ts";
import { Connection } from "../core/net/connection.ts";
import { Listener } from "../core/net/listener.ts";
import { StreamParser } from "../core/xml/parser.ts";
import { escapeAttr, type Stanza, streamErrorXml } from "../core/xml/stanza.ts";
import { prep, split } from "../core/jid.ts";
import { unrefTimeout } from "../core/timers.ts";

export const meta = { scope: "global" };

const NS = "jabber:component:accept";
/** How long a connection may take to open its stream and shake hands. */
const HANDSHAKE_TIMEOUT_MS = 30_000;
/** Largest stanza a component may send (it is trusted, but not unboundedly). */
const MAX_STANZA = 1 << 20;

/** A component domain this server has, and the connection serving it. */
interface ComponentHost {
  name: string;
  secret: string;
  module: Module;
  session: ComponentSession | undefined;
}

/** A connected, authenticated component: where stanzas for its domain go. */
interface ComponentSession extends Origin {
  type: "component";
  close(reason?: string | { condition: string; text?: string }): void;
}

/** What the global instance shares with each component host (module.exports). */
interface Registry {
  /**
   * Adds a domain, or updates the one already there (a configuration reload
   * loads the host's modules again): the entry returned is the one to use, so
   * a connected component stays connected.
   */
  register(host: ComponentHost): ComponentHost;
}

/** The open listening sockets (closed on unload). */
const listeners = new Set<Listener>();

export default async function component(module: Module) {
  const log = module.log;
  const hosts = new Map<string, ComponentHost>();
  const registry: Registry = {
    register(h) {
      const old = hosts.get(h.name);
      if (!old) {
        hosts.set(h.name, h);
        return h;
      }
      old.secret = h.secret;
      old.module = h.module;
      return old;
    },
  };
  module.exports.registry = registry;
  module.reportConnections("component", () => {
    let n = 0;
    for (const h of hosts.values()) if (h.session) n++;
    return n;
  });

  const ports = module.getOption<number[]>("component_ports", [5347]);
  const mine: Listener[] = [];
  const interfaces = module.getOption<string[]>("component_interfaces", ["127.0.0.1"]);
  for (const iface of interfaces) {
    for (const port of ports) {
      const l = new Listener({ host: iface, port, log }, accept);
      await l.start();
      listeners.add(l);
      mine.push(l);
      log.info("components may connect on {where}", { where: l.address() });
    }
  }

  function accept(socket: Socket) {
    const conn = new Connection(socket, false, { maxSendBuffer: 16 << 20 });
    const id = randomUUID();
    let host: ComponentHost | undefined;
    let session: ComponentSession | undefined;
    let opened = false;
    /** Failed or closed: whatever else arrived in the same read is ignored. */
    let done = false;

    const fail = (condition: string, text?: string) => {
      done = true;
      conn.stopReading();
      if (!opened) {
        opened = true;
        conn.write(
          `<?xml version='1.0'?><stream:stream xmlns='${NS}' ` +
            `xmlns:stream='http://etherx.jabber.org/streams' id='${id}'>`,
        );
      }
      conn.write(streamErrorXml(condition, text) + "</stream:stream>");
      conn.close();
    };
    const timer = unrefTimeout(() => {
      if (!session) fail("connection-timeout", "No handshake");
    }, HANDSHAKE_TIMEOUT_MS);

    const parser = new StreamParser({
      streamOpen(attrs) {
        if (done) return;
        const to = attrs.to ?? "";
        const h = hosts.get(to);
        if (!h || module.hostType(to) !== "component") {
          log.info("a component connected for {to}, which is not one of ours", { to });
          return fail("host-unknown", "No such component");
        }
        host = h;
        opened = true;
        conn.write(
          `<?xml version='1.0'?><stream:stream xmlns='${NS}' ` +
            `xmlns:stream='http://etherx.jabber.org/streams' id='${id}' ` +
            `from='${escapeAttr(to)}'>`,
        );
      },
      stanza(el) {
        if (done) return;
        if (!host) return fail("not-authorized");
        if (!session) return handshake(el);
        fromComponent(host, session, el);
      },
      streamClose() {
        if (done) return;
        done = true;
        conn.write("</stream:stream>");
        conn.close();
      },
      error(condition, text) {
        fail(condition, text);
      },
    }, { defaultNs: NS, maxStanzaSize: MAX_STANZA });
    conn.onData = (chunk) => parser.feed(chunk);
    conn.onError = (e) => {
      log.error("error reading from a component: {error}", { error: e });
      fail("internal-server-error");
    };
    conn.onOverflow = () => fail("policy-violation", "Too much output waiting");
    conn.onClose = () => {
      clearTimeout(timer);
      if (host && session && host.session === session) {
        host.session = undefined;
        log.info("component {host} disconnected", { host: host.name });
      }
    };

    function handshake(el: Stanza) {
      const h = host!;
      if (el.name !== "handshake") return fail("not-authorized", "Handshake first");
      const expected = createHash("sha1").update(id + h.secret).digest("hex");
      if (el.getText().trim().toLowerCase() !== expected) {
        log.warn("component {host} failed to authenticate: wrong secret", { host: h.name });
        return fail("not-authorized", "Wrong secret");
      }
      if (h.session) {
        log.warn("component {host} connected again while connected", { host: h.name });
        return fail("conflict", "Component already connected");
      }
      clearTimeout(timer);
      session = {
        type: "component",
        host: h.name,
        send: (stanza: Stanza | string) => conn.write(stanza.toString()),
        close: (reason) => {
          const r = typeof reason === "string" ? { condition: reason } : reason;
          fail(r?.condition ?? "system-shutdown", r?.text);
        },
      };
      h.session = session;
      conn.write("<handshake/>");
      log.info("component {host} connected", { host: h.name });
    }
  }

  /** A stanza the component sends: routed from it, if it is from its own domain. */
  function fromComponent(h: ComponentHost, session: ComponentSession, el: Stanza) {
    const name = el.name;
    if (
      el.attrs.xmlns !== undefined || (name !== "message" && name !== "presence" && name !== "iq")
    ) {
      return; // nothing else means anything after the handshake
    }
    const type = el.attrs.type;
    const refuse = (errorType: "cancel" | "modify", condition: string, text: string) => {
      if (type !== "error" && type !== "result") {
        session.send(el.errorReply(errorType, condition, text));
      }
    };
    // Split as a JID: in "localhost/x@gw.example" the domain is localhost.
    const from = el.attrs.from === undefined ? undefined : prep(el.attrs.from);
    if (from === undefined || split(from)!.host !== h.name) {
      return refuse("cancel", "not-allowed", `A component sends from its own domain ${h.name}`);
    }
    if (el.attrs.to === undefined) {
      return refuse("modify", "bad-request", "Components MUST specify a 'to' address on stanzas");
    }
    const to = prep(el.attrs.to);
    if (to === undefined) return refuse("modify", "jid-malformed", "Invalid 'to' address");
    el.attrs.from = from;
    el.attrs.to = to;
    module.stanzaCounters.received.count(el.name);
    h.module.send(el, session);
  }

  // A domain no longer served (a configuration reload dropped it): its component goes.
  module.hookGlobal("host-deactivated", (name) => {
    const h = hosts.get(name);
    if (!h) return;
    hosts.delete(name);
    h.session?.close({ condition: "host-gone", text: `${name} is no longer served` });
  });

  module.hookGlobal("server-stopping", () => {
    for (const l of mine) {
      l.close();
      listeners.delete(l);
    }
    for (const h of hosts.values()) h.session?.close("system-shutdown");
  });
}

/** The module goes (a reload): its ports close. */
export function unload() {
  for (const l of listeners) l.close();
  listeners.clear();
}

/** A component domain: its secret, and everything for it goes to its connection. */
export function addHost(hostModule: Module) {
  const secret = hostModule.getOptionString("component_secret");
  if (!secret) {
    throw new Error(`component "${hostModule.host}": component_secret is required`);
  }
  const h = (hostModule.exports.registry as Registry).register({
    name: hostModule.host,
    secret,
    module: hostModule,
    session: undefined,
  });

  const toComponent = ({ origin, stanza }: StanzaEvent) => {
    if (h.session) {
      h.session.send(stanza);
      return true;
    }
    const type = stanza.attrs.type;
    if (type !== "error" && type !== "result" && stanza.name !== "presence") {
      // As Prosody: remote-server-timeout, by the domain, marked not-connected.
      const err = stanza.errorReply(
        "wait",
        "remote-server-timeout",
        "Component unavailable",
        h.name,
      );
      err.getChild("error")!.tag("not-connected", { xmlns: "xmpp:prosody.im/protocol/component" });
      origin.send(err);
    }
    return true;
  };
  for (const kind of ["message", "presence", "iq"]) {
    for (const dest of ["bare", "full", "host"]) {
      hostModule.hook(`${kind}/${dest}`, toComponent, -1);
    }
  }
}
