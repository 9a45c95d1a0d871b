/**
 * SASL authentication (RFC 6120 §6), resource binding (§7) and the legacy
 * session establishment Prosody still advertises (RFC 3921, optional).
 *
 * Mechanisms: SCRAM-SHA-1, SCRAM-SHA-256, their -PLUS forms with
 * `tls-server-end-point` on encrypted streams, and PLAIN (refused on an
 * unencrypted stream unless `allow_unencrypted_plain_auth`). With
 * `c2s_require_encryption` nothing is offered before TLS;
 * `disable_sasl_mechanisms` takes mechanisms off the list.
 *
 * Abuse: after 3 wrong credentials on one stream, or 5 failures of any kind,
 * it is closed with `policy-violation` (RFC 6120 §6.4.5). Wrong credentials
 * are counted per address
 * across connections: past `limit_auth_max` (5) within `limit_auth_period`
 * (30 s) further attempts from it get `temporary-auth-failure` without a
 * password being checked. Every failure is logged at `info`, in one line a
 * fail2ban filter can match:
 *
 *     authentication failed for juliet@example.com from 203.0.113.7 (PLAIN: not-authorized)
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { Session } from "../core/session.ts";
import { prepNode } from "../core/jid.ts";
import {
  availableMechanisms,
  type ChannelBinding,
  createMechanism,
  type SaslMechanism,
  type SaslProfile,
  type SaslStep,
} from "../core/sasl/mechanisms.ts";
import { BindError } from "../core/sessionmanager.ts";
import { element } from "../core/xml/stanza.ts";
import type { StanzaEvent } from "../core/router.ts";
import { KeyedThrottle } from "../core/throttle.ts";
import { isPromise } from "../core/events.ts";

const SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl";
const BIND_NS = "urn:ietf:params:xml:ns:xmpp-bind";
const SESSION_NS = "urn:ietf:params:xml:ns:xmpp-session";
const CB_NS = "urn:xmpp:sasl-cb:0";
const MAX_FAILURES = 3;
const MAX_ATTEMPTS = 5;
/** Conditions that are wrong credentials (or refused as a guesser). */
const COUNTED = new Set(["not-authorized", "temporary-auth-failure"]);

interface SaslState {
  mechanism: SaslMechanism | undefined;
  /** Wrong credentials so far. */
  failures: number;
  /** Failures of any other kind so far. */
  attempts: number;
}

export default async function saslauth(module: Module) {
  const requireEncryption = module.getOptionBoolean("c2s_require_encryption", true);
  const allowUnencryptedPlain = module.getOptionBoolean("allow_unencrypted_plain_auth", false)!;
  const disabled = new Set(
    module.getOptionArray<string>("disable_sasl_mechanisms").map((m) => m.toUpperCase()),
  );
  // One table for the whole server: an address guessing on two hosts is one guesser.
  const limitMax = module.getOptionInteger("limit_auth_max", 5, { min: 1 });
  const limitPeriod = module.getOptionPeriod("limit_auth_period", 30);
  const failures = module.shared(
    "/saslauth/failures",
    () => new KeyedThrottle({ capacity: limitMax, perSeconds: limitPeriod }),
  );
  // The secret SCRAM's made-up salts for unknown users come from, kept across
  // restarts: a salt that changed after each restart would give them away.
  const secrets = module.openStore<{ fakeSaltKey: string }>("saslauth");
  let secret = await secrets.get(null);
  if (!secret) {
    secret = { fakeSaltKey: crypto.getRandomValues(new Uint8Array(32)).toBase64() };
    await secrets.set(null, secret);
  }
  const fakeSaltKey = Uint8Array.fromBase64(secret.fakeSaltKey);

  /** The host's auth provider, with usernames nodeprepped before lookups. */
  function profile(): SaslProfile {
    const p = module.users.saslProfile();
    const out: SaslProfile = {};
    if (p.testPassword) {
      const test = p.testPassword;
      out.testPassword = (u, pw) => {
        const node = prepNode(u);
        return node === undefined ? Promise.resolve(false) : test(node, pw);
      };
    }
    if (p.scramCredentials) {
      const creds = p.scramCredentials;
      out.scramCredentials = (u, hash) => {
        const node = prepNode(u);
        return node === undefined ? Promise.resolve(null) : creds(node, hash);
      };
    }
    return out;
  }

  /** tls-server-end-point of the certificate this connection was actually given. */
  function binding(session: Session): ChannelBinding | undefined {
    if (!session.secure) return undefined;
    const tls = module.tlsFor(session.tlsHost ?? module.host);
    return tls ? { type: "tls-server-end-point", data: tls.endPoint } : undefined;
  }

  function mechanismsFor(session: Session): string[] {
    if (requireEncryption && !session.secure) return [];
    return availableMechanisms(profile(), {
      secure: session.secure,
      allowUnencryptedPlain,
      channelBinding: binding(session),
      disabled,
    });
  }

  module.hook("stream-features", ({ origin, features }) => {
    if (origin.type === "c2s_unauthed") {
      const mechs = mechanismsFor(origin);
      if (mechs.length === 0) return;
      features.tag("mechanisms", { xmlns: SASL_NS });
      for (const m of mechs) features.textTag("mechanism", m);
      features.up();
      if (binding(origin)) {
        features.tag("sasl-channel-binding", { xmlns: CB_NS })
          .tag("channel-binding", { type: "tls-server-end-point" }).up().up();
      }
    } else if (origin.type === "c2s_unbound") {
      features.tag("bind", { xmlns: BIND_NS }).up();
      features.tag("session", { xmlns: SESSION_NS }).tag("optional").up().up();
    }
  });

  function state(session: Session): SaslState {
    return (session.sasl_handler ??= {
      mechanism: undefined,
      failures: 0,
      attempts: 0,
    }) as SaslState;
  }

  function fail(session: Session, condition: string, text?: string) {
    const f = element("failure", { xmlns: SASL_NS }).tag(condition).up();
    if (text) f.textTag("text", text);
    session.send(f);
    const st = state(session);
    st.mechanism = undefined;
    // Wrong credentials close the stream at the third; any failure (an abort, a
    // malformed exchange, a mechanism a client falls back from) at the fifth,
    // RFC 6120's most, so that none repeats without end.
    if (COUNTED.has(condition)) st.failures++;
    if (COUNTED.has(condition) ? st.failures >= MAX_FAILURES : ++st.attempts >= MAX_ATTEMPTS) {
      // RFC 6120 §6.4.5: past the retries, a policy-violation stream error.
      session.close({
        condition: "policy-violation",
        text: "Too many failed authentication attempts",
      });
    }
  }

  /** The one log line per failed attempt (documented: fail2ban filters match it). */
  function logFailure(session: Session, mechanism: string, condition: string, user?: string) {
    module.log.info("authentication failed for {jid} from {ip} ({mechanism}: {condition})", {
      jid: user === undefined ? `(unknown)@${module.host}` : `${user}@${module.host}`,
      ip: session.ip,
      mechanism,
      condition,
    });
  }

  async function handleStep(session: Session, step: SaslStep) {
    if (step.status === "challenge") {
      session.send(element("challenge", { xmlns: SASL_NS }).text(encode(step.data)));
      return;
    }
    if (step.status === "failure") {
      const mechanism = state(session).mechanism?.name ?? "?";
      if (step.condition === "not-authorized") {
        failures.take(session.ipGroup);
        logFailure(session, mechanism, step.condition, step.username);
      }
      const r = module.fireEvent("authentication-failure", {
        session,
        condition: step.condition,
        text: step.text,
      });
      if (isPromise(r)) Promise.resolve(r).catch(module.logError);
      return fail(session, step.condition, step.text);
    }
    const mechanism = state(session).mechanism?.name ?? "?";
    state(session).mechanism = undefined;
    const refused = module.authenticate(session, step.username);
    if (refused !== true) {
      logFailure(session, mechanism, "temporary-auth-failure", step.username);
      return fail(session, "temporary-auth-failure", refused);
    }
    session.sasl_handler = undefined;
    session.send(element("success", { xmlns: SASL_NS }).text(step.data ? encode(step.data) : ""));
    session.resetStream();
    module.log.info("authenticated {user}@{host}", { user: session.username, host: module.host });
    await module.fireEvent("authentication-success", { session });
  }

  module.hookTag(SASL_NS, "auth", async (session, stanza) => {
    if (session.type !== "c2s_unauthed") return;
    if (requireEncryption && !session.secure) {
      fail(session, "encryption-required");
      return true;
    }
    const name = stanza.attrs.mechanism ?? "";
    if (!failures.allowed(session.ipGroup)) {
      // This address failed too often lately: no password is checked for now.
      logFailure(session, name, "temporary-auth-failure (too many failures from this address)");
      fail(session, "temporary-auth-failure", "Too many failed attempts; try again later");
      return true;
    }
    const offered = mechanismsFor(session);
    const mechanism = offered.includes(name)
      ? createMechanism(name, profile(), { channelBinding: binding(session), fakeSaltKey })
      : undefined;
    if (!mechanism) {
      fail(session, "invalid-mechanism");
      return true;
    }
    const data = decode(stanza.getText());
    if (data === undefined) {
      fail(session, "incorrect-encoding");
      return true;
    }
    state(session).mechanism = mechanism;
    await handleStep(session, await mechanism.step(data));
    return true;
  });

  module.hookTag(SASL_NS, "response", async (session, stanza) => {
    if (session.type !== "c2s_unauthed") return;
    const mechanism = state(session).mechanism;
    if (!mechanism) {
      fail(session, "malformed-request", "No authentication in progress");
      return true;
    }
    const data = decode(stanza.getText());
    if (data === undefined) {
      fail(session, "incorrect-encoding");
      return true;
    }
    await handleStep(session, await mechanism.step(data));
    return true;
  });

  module.hookTag(SASL_NS, "abort", (session) => {
    if (session.type !== "c2s_unauthed") return;
    fail(session, "aborted");
    return true;
  });

  // Resource binding, for authenticated sessions without a resource.
  module.hook(`stanza/iq/${BIND_NS}:bind`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    if (origin.type !== "c2s_unbound" || stanza.attrs.type !== "set") return;
    const wanted = stanza.getChild("bind", BIND_NS)!.getChildText("resource", BIND_NS);
    try {
      await module.bindResource(origin, wanted?.trim() || undefined);
    } catch (e) {
      if (!(e instanceof BindError)) throw e;
      origin.send(stanza.errorReply(e.type, e.condition, e.message));
      return true;
    }
    origin.send(
      stanza.reply().tag("bind", { xmlns: BIND_NS }).textTag("jid", origin.full_jid!),
    );
    return true;
  });

  // Legacy session establishment: nothing to do but say yes.
  const sessionOk = ({ origin, stanza }: StanzaEvent) => {
    origin.send(stanza.reply());
    return true;
  };
  module.hook(`iq-set/host/${SESSION_NS}:session`, sessionOk);
  module.hook(`iq-set/self/${SESSION_NS}:session`, sessionOk);
}

function encode(data: Uint8Array): string {
  return data.length === 0 ? "=" : data.toBase64();
}

/** Base64 payload of a SASL element; "=" or nothing is empty; undefined when invalid. */
function decode(text: string): Uint8Array | undefined {
  const t = text.trim();
  if (t === "" || t === "=") return new Uint8Array(0);
  try {
    // RFC 6120 §6.4.2: padded, no whitespace, nothing after the padding.
    return Uint8Array.fromBase64(t, { lastChunkHandling: "strict" });
  } catch {
    return undefined;
  }
}
