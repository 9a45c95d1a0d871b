/**
 * External Service Discovery (XEP-0215, `urn:xmpp:extdisco:2`), as
 * Prosody's mod_external_services: tells a client which STUN and TURN
 * servers to use for calls, with TURN credentials good for a while.
 *
 * ```ts
 * external_services: [
 *   { type: "stun", transport: "udp", host: "turn.example.com", port: 3478 },
 *   { type: "turn", transport: "udp", host: "turn.example.com", port: 3478, secret: "s3cret" },
 * ],
 * ```
 *
 * A service with a `secret` (coturn's `static-auth-secret`) gets
 * time-limited credentials, as the TURN REST convention has them: the user
 * name is the time they expire (Unix seconds), the password the base64
 * HMAC-SHA1 of that name under the secret; `ttl` (default
 * `external_service_ttl`, 86,400 s) says how long. Fixed `username` and
 * `password` are passed as they are. The shorthand
 * `external_service_host` (+ `external_service_port`, 3478, and
 * `external_service_secret`) announces STUN and TURN on one host, as
 * Prosody does. Other modules add services as `external_service` items
 * (`turn_external` does).
 *
 * Only the host's own users are answered (others get `forbidden`); a
 * `credentials` request for a service not configured gets `item-not-found`.
 * @module
 */
import { createHmac } from "node:crypto";
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import { element, type Stanza } from "../core/xml/stanza.ts";

const NS = "urn:xmpp:extdisco:2";

/** One configured service (the option's entries, and `external_service` items). */
export interface ExternalService {
  type: string;
  host: string;
  port?: number;
  transport?: "udp" | "tcp";
  name?: string;
  /** Fixed credentials. */
  username?: string;
  password?: string;
  /** Shared secret: time-limited credentials are made from it. */
  secret?: string;
  /** Seconds those credentials last. */
  ttl?: number;
  /** Announce it without credentials: the client asks for them (`<credentials/>`). */
  restricted?: boolean;
}

/** TURN REST credentials: user name = expiry (Unix seconds), password = HMAC-SHA1 of it. */
export function turnCredentials(
  secret: string,
  ttl: number,
  now = Date.now(),
): { username: string; password: string; expires: Date } {
  const expiresAt = Math.floor(now / 1000) + ttl;
  const username = String(expiresAt);
  const password = createHmac("sha1", secret).update(username).digest("base64");
  return { username, password, expires: new Date(expiresAt * 1000) };
}

export default function externalServices(module: Module) {
  const defaultTtl = module.getOptionPeriod("external_service_ttl", 86400);

  function configured(): ExternalService[] {
    const list = [...module.getOptionArray<ExternalService>("external_services")];
    const host = module.getOptionString("external_service_host");
    if (host) {
      const port = module.getOptionInteger("external_service_port", 3478, { min: 1, max: 65535 });
      const secret = module.getOptionString("external_service_secret");
      list.push({ type: "stun", transport: "udp", host, port });
      list.push({ type: "turn", transport: "udp", host, port, secret });
    }
    list.push(...module.hostItems<ExternalService>("external_service"));
    return list.filter((s) => s && typeof s.type === "string" && typeof s.host === "string");
  }

  /** The `<service/>` element; with credentials unless `withCredentials` is false. */
  function serviceElement(s: ExternalService, withCredentials: boolean): Stanza {
    const el = element("service", {
      type: s.type,
      host: s.host,
      port: s.port !== undefined ? String(s.port) : undefined,
      transport: s.transport,
      name: s.name,
    });
    const hasCredentials = s.secret !== undefined || s.username !== undefined;
    if (!hasCredentials) return el;
    if (!withCredentials) {
      el.attrs.restricted = "1";
      return el;
    }
    if (s.secret !== undefined) {
      const c = turnCredentials(s.secret, s.ttl ?? defaultTtl);
      el.attrs.username = c.username;
      el.attrs.password = c.password;
      el.attrs.expires = c.expires.toISOString().replace(/\.\d+Z$/, "Z");
    } else {
      el.attrs.username = s.username;
      el.attrs.password = s.password;
    }
    return el;
  }

  /** Only the host's own users: credentials are for them. */
  function allowed(event: StanzaEvent): boolean {
    const o = event.origin;
    if (o.type === "c2s" && o.host === module.host && o.username) return true;
    event.origin.send(event.stanza.errorReply("auth", "forbidden"));
    return false;
  }

  module.addFeature(NS);

  module.hook(`iq-get/host/${NS}:services`, (event: StanzaEvent) => {
    if (!allowed(event)) return true;
    const type = event.stanza.getChild("services", NS)?.attrs.type;
    const reply = event.stanza.reply().tag("services", { xmlns: NS, type });
    for (const s of configured()) {
      if (type && s.type !== type) continue;
      reply.addChild(serviceElement(s, !s.restricted));
    }
    event.origin.send(reply);
    return true;
  });

  module.hook(`iq-get/host/${NS}:credentials`, (event: StanzaEvent) => {
    if (!allowed(event)) return true;
    const asked = event.stanza.getChild("credentials", NS)?.getChild("service");
    const match = configured().find((s) =>
      s.host === asked?.attrs.host && s.type === asked?.attrs.type &&
      (asked.attrs.port === undefined || String(s.port) === asked.attrs.port) &&
      (s.secret !== undefined || s.username !== undefined)
    );
    if (!match) {
      event.origin.send(event.stanza.errorReply("cancel", "item-not-found"));
      return true;
    }
    event.origin.send(
      event.stanza.reply().tag("credentials", { xmlns: NS }).addChild(serviceElement(match, true)),
    );
    return true;
  });
}
