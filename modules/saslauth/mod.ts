/**
 * SASL authentication (RFC 6120 §6), resource binding (§7) and the legacy
 * session establishment Prosody still advertises (RFC 3921, optional); and
 * SASL2 (XEP-0388) with Bind2 (XEP-0386) and FAST tokens (XEP-0484), in
 * ./sasl2.ts and ./fast.ts.
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
import type { Module } from "../../core/moduleapi.ts";
import type { Session } from "../../core/session.ts";
import { BindError } from "../../core/sessionmanager.ts";
import { element } from "../../core/xml/stanza.ts";
import type { StanzaEvent } from "../../core/router.ts";
import { KeyedThrottle } from "../../core/throttle.ts";
import { decode, encode, SaslExchange, type Wire } from "./exchange.ts";
import { setupSasl2 } from "./sasl2.ts";
import { FastTokens } from "./fast.ts";

const SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl";
const BIND_NS = "urn:ietf:params:xml:ns:xmpp-bind";
const SESSION_NS = "urn:ietf:params:xml:ns:xmpp-session";
const CB_NS = "urn:xmpp:sasl-cb:0";

export default async function saslauth(module: Module) {
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
  const fast = module.getOptionBoolean("sasl2", true) && module.getOptionBoolean("fast", true)
    ? await FastTokens.open(module)
    : undefined;
  const exchange = new SaslExchange(module, {
    requireEncryption: module.getOptionBoolean("c2s_require_encryption", true)!,
    allowUnencryptedPlain: module.getOptionBoolean("allow_unencrypted_plain_auth", false)!,
    disabled,
    failures,
    fakeSaltKey: Uint8Array.fromBase64(secret.fakeSaltKey),
    fastTokens: fast ? (user, mech, count) => fast.keys(user, mech, count) : undefined,
  });

  module.hook("stream-features", ({ origin, features }) => {
    if (origin.type === "c2s_unauthed") {
      const mechs = exchange.mechanismsFor(origin);
      if (mechs.length === 0) return;
      features.tag("mechanisms", { xmlns: SASL_NS });
      for (const m of mechs) features.textTag("mechanism", m);
      features.up();
      if (exchange.binding(origin)) {
        features.tag("sasl-channel-binding", { xmlns: CB_NS })
          .tag("channel-binding", { type: "tls-server-end-point" }).up().up();
      }
    } else if (origin.type === "c2s_unbound") {
      features.tag("bind", { xmlns: BIND_NS }).up();
      features.tag("session", { xmlns: SESSION_NS }).tag("optional").up().up();
    }
  });

  /** RFC 6120 SASL on the wire. */
  const wire: Wire = {
    challenge(session, data) {
      session.send(element("challenge", { xmlns: SASL_NS }).text(encode(data)));
    },
    failure(session, condition, text) {
      const f = element("failure", { xmlns: SASL_NS }).tag(condition).up();
      if (text) f.textTag("text", text);
      session.send(f);
    },
  };

  async function succeeded(session: Session, done: { data?: Uint8Array } | undefined) {
    if (!done) return;
    session.send(element("success", { xmlns: SASL_NS }).text(done.data ? encode(done.data) : ""));
    session.resetStream();
    await module.fireEvent("authentication-success", { session });
  }

  module.hookTag(SASL_NS, "auth", async (session, stanza) => {
    if (session.type !== "c2s_unauthed") return;
    const offered = exchange.mechanismsFor(session);
    const name = stanza.attrs.mechanism ?? "";
    await succeeded(
      session,
      await exchange.begin(session, name, decode(stanza.getText()), wire, offered),
    );
    return true;
  });

  module.hookTag(SASL_NS, "response", async (session, stanza) => {
    if (session.type !== "c2s_unauthed") return;
    await succeeded(session, await exchange.respond(session, decode(stanza.getText()), wire));
    return true;
  });

  module.hookTag(SASL_NS, "abort", (session) => {
    if (session.type !== "c2s_unauthed") return;
    exchange.abort(session, wire);
    return true;
  });

  if (module.getOptionBoolean("sasl2", true)) setupSasl2(module, exchange, fast);

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
