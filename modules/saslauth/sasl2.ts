/**
 * SASL2 (XEP-0388, `urn:xmpp:sasl:2`) with Bind2 (XEP-0386,
 * `urn:xmpp:bind:0`) and FAST (XEP-0484, `urn:xmpp:fast:0`): a client logs
 * in, binds a resource, turns on what it needs and resumes a session, all in
 * one exchange, with no stream restart.
 *
 * The same mechanisms, limits and failure accounting as RFC 6120 SASL
 * (./exchange.ts). The client names itself with `<user-agent id='…'/>`; Bind2
 * binds the resource `<tag>.<8 characters derived from the id>`, so a
 * device that logs in again gets the same resource (and replaces its stale
 * session). On an encrypted stream FAST offers HT-SHA-256-NONE: a client
 * that asks (`<request-token/>`) gets a token with its success, and can log
 * in with it next time (./fast.ts).
 *
 * Modules extend the exchange with events, named as in Prosody's SASL2
 * modules: `advertise-sasl-features` (`{ origin, features }`: the `<inline/>`
 * of the offer), `advertise-bind-features` (`{ origin, features }`: Bind2's
 * `<inline/>`), `enable-bind-features` (`{ session, request, result }`: the
 * client's `<bind/>` and the server's `<bound/>`), and `sasl2-resume`
 * (`{ session, request, success, after }`: stream management resuming
 * inline; it sets `session` to the resumed one and pushes into `after` what
 * must follow the `<success/>` on the wire).
 * @module
 */
import type { Module } from "../../core/moduleapi.ts";
import type { Session } from "../../core/session.ts";
import { element, type Stanza } from "../../core/xml/stanza.ts";
import { prepResource } from "../../core/jid.ts";
import { BindError } from "../../core/sessionmanager.ts";
import { formatDateTime } from "../../core/datetime.ts";
import { HT_SHA_256_NONE } from "../../core/sasl/ht.ts";
import { type Authenticated, decode, encode, type SaslExchange, type Wire } from "./exchange.ts";
import type { FastTokens } from "./fast.ts";

export const SASL2_NS = "urn:xmpp:sasl:2";
export const BIND2_NS = "urn:xmpp:bind:0";
export const FAST_NS = "urn:xmpp:fast:0";
const SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl";
const SM_NS = "urn:xmpp:sm:3";
const FAST_MECHANISMS = [HT_SHA_256_NONE];

/** What a client said about itself (XEP-0388 §2.2.1). */
export interface UserAgent {
  id?: string;
  software?: string;
  device?: string;
}

/** The `sasl2-resume` event. */
export interface Sasl2ResumeEvent {
  session: Session;
  request: Stanza;
  success: Stanza;
  after: (() => void)[];
}

export function setupSasl2(module: Module, exchange: SaslExchange, fast: FastTokens | undefined) {
  /** The `<authenticate/>` under way, per session, until it ends. */
  const requests = new WeakMap<Session, Stanza>();

  function fastMechanisms(session: Session): string[] {
    // FAST only on a secure stream: its single message can be replayed (XEP-0484 §8).
    return fast && session.secure ? FAST_MECHANISMS : [];
  }

  module.hook("stream-features", ({ origin, features }) => {
    if (origin.type !== "c2s_unauthed") return;
    const mechanisms = exchange.mechanismsFor(origin);
    if (mechanisms.length === 0) return;
    features.tag("authentication", { xmlns: SASL2_NS });
    for (const m of mechanisms) features.textTag("mechanism", m);
    const inline = element("inline");
    const bind = element("bind", { xmlns: BIND2_NS });
    const bindInline = element("inline");
    module.fireEvent("advertise-bind-features", { origin, features: bindInline });
    if (bindInline.children.length) bind.addChild(bindInline);
    inline.addChild(bind);
    const fastOffer = fastMechanisms(origin);
    if (fastOffer.length) {
      inline.tag("fast", { xmlns: FAST_NS });
      for (const m of fastOffer) inline.textTag("mechanism", m);
      inline.up();
    }
    module.fireEvent("advertise-sasl-features", { origin, features: inline });
    features.addChild(inline).up();
  });

  const wire: Wire = {
    challenge(session, data) {
      session.send(element("challenge", { xmlns: SASL2_NS }).text(encode(data)));
    },
    failure(session, condition, text) {
      requests.delete(session);
      const f = element("failure", { xmlns: SASL2_NS }).tag(condition, { xmlns: SASL_NS }).up();
      if (text) f.textTag("text", text);
      session.send(f);
    },
  };

  function userAgent(request: Stanza): UserAgent | string {
    const ua = request.getChild("user-agent");
    if (!ua) return {};
    const id = ua.attrs.id;
    if (id !== undefined && (id.length === 0 || id.length > 256)) return "Invalid user-agent id";
    const software = ua.getChildText("software")?.slice(0, 256);
    const device = ua.getChildText("device")?.slice(0, 256);
    return { id, software, device };
  }

  module.hookTag(SASL2_NS, "authenticate", async (session, stanza) => {
    if (session.type !== "c2s_unauthed") return;
    const ua = userAgent(stanza);
    if (typeof ua === "string") {
      exchange.fail(session, wire, "malformed-request", ua);
      return true;
    }
    (session.ext ??= {}).userAgent = ua;
    const name = stanza.attrs.mechanism ?? "";
    const fastEl = stanza.getChild("fast", FAST_NS);
    let count: number | undefined;
    if (fastEl?.attrs.count !== undefined) {
      if (!/^\d{1,15}$/.test(fastEl.attrs.count)) {
        exchange.fail(session, wire, "malformed-request", "Invalid FAST count");
        return true;
      }
      count = Number(fastEl.attrs.count);
    }
    // A token mechanism needs the client's id (its tokens are per client), and vice versa.
    const offered = FAST_MECHANISMS.includes(name)
      ? (ua.id === undefined ? [] : fastMechanisms(session))
      : exchange.mechanismsFor(session);
    requests.set(session, stanza);
    const initial = stanza.getChild("initial-response");
    const data = initial ? decode(initial.getText()) : new Uint8Array(0);
    await finish(session, await exchange.begin(session, name, data, wire, offered, count));
    return true;
  });

  module.hookTag(SASL2_NS, "response", async (session, stanza) => {
    if (session.type !== "c2s_unauthed") return;
    await finish(session, await exchange.respond(session, decode(stanza.getText()), wire));
    return true;
  });

  module.hookTag(SASL2_NS, "abort", (session) => {
    if (session.type !== "c2s_unauthed") return;
    exchange.abort(session, wire);
    return true;
  });

  /** Authenticated: the inline requests, then `<success/>` — no stream restart. */
  async function finish(session: Session, done: Authenticated | undefined) {
    const request = requests.get(session);
    if (!done || !request) return;
    requests.delete(session);
    session.onAuthenticated();
    const me = `${session.username}@${session.host}`;
    const success = element("success", { xmlns: SASL2_NS });
    if (done.data) success.textTag("additional-data", encode(done.data));
    const after: (() => void)[] = [];
    let current = session;
    let resumed = false;
    const resume = request.getChild("resume", SM_NS);
    if (resume) {
      const event: Sasl2ResumeEvent = { session, request: resume, success, after };
      module.fireEvent("sasl2-resume", event);
      resumed = event.session !== session;
      current = event.session;
    }
    const bindRequest = request.getChild("bind", BIND2_NS);
    if (!resumed && bindRequest) {
      const bound = await bind(session, bindRequest, (session.ext?.userAgent as UserAgent).id);
      if (typeof bound === "string") {
        // Authenticated, but no resource: the client may bind the RFC 6120 way.
        module.log.info("Bind2 for {user} failed: {error}", { user: me, error: bound });
      } else {
        success.addChild(bound);
      }
    }
    const token = await fastToken(current, request, done);
    success.textTag("authorization-identifier", current.full_jid ?? me);
    if (token) success.addChild(token);
    current.send(success);
    for (const f of after) f();
    await module.fireEvent("authentication-success", { session: current });
  }

  /** Bind2: binds the resource and lets modules act on the inline requests. */
  async function bind(
    session: Session,
    request: Stanza,
    uaid: string | undefined,
  ): Promise<Stanza | string> {
    const tag = prepResource((request.getChildText("tag") ?? "").trim().slice(0, 32)) || "cadence";
    const suffix = uaid === undefined
      ? crypto.getRandomValues(new Uint8Array(6)).toBase64({ alphabet: "base64url" })
      : (await derive(`${session.username}\0${uaid}`)).slice(0, 8);
    try {
      await module.bindResource(session, `${tag}.${suffix}`);
    } catch (e) {
      if (!(e instanceof BindError)) throw e;
      return e.message;
    }
    const result = element("bound", { xmlns: BIND2_NS });
    await module.fireEvent("enable-bind-features", { session, request, result });
    return result;
  }

  /** FAST: a token used is recorded (and maybe rotated); one asked for is issued. */
  async function fastToken(
    session: Session,
    request: Stanza,
    done: Authenticated,
  ): Promise<Stanza | undefined> {
    if (!fast) return undefined;
    const user = session.username!;
    const uaid = (session.ext?.userAgent as UserAgent | undefined)?.id;
    const fastEl = request.getChild("fast", FAST_NS);
    let rotate = false;
    if (done.token) {
      const invalidate = fastEl?.attrs.invalidate === "true" || fastEl?.attrs.invalidate === "1";
      const count = fastEl?.attrs.count === undefined ? undefined : Number(fastEl.attrs.count);
      rotate = await fast.used(user, done.token, { count, invalidate });
    }
    const asked = request.getChild("request-token", FAST_NS)?.attrs.mechanism;
    const mechanism = asked ?? (rotate ? done.mechanism : undefined);
    if (!mechanism || uaid === undefined || !fastMechanisms(session).includes(mechanism)) {
      return undefined;
    }
    const { token, expiry } = await fast.issue(user, uaid, mechanism);
    return element("token", {
      xmlns: FAST_NS,
      token,
      expiry: formatDateTime(expiry.getTime() / 1000),
    });
  }

  module.hookGlobal("user-password-changed", async ({ username, host }) => {
    if (host === module.host) await fast?.revokeAll(username);
  });
  module.hookGlobal("user-deleted", async ({ username, host }) => {
    if (host === module.host) await fast?.revokeAll(username);
  });
}

async function derive(text: string): Promise<string> {
  const h = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return new Uint8Array(h).toBase64({ alphabet: "base64url" });
}
