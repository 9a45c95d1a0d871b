/**
 * One SASL exchange, whichever protocol carries it (RFC 6120 SASL or SASL2,
 * XEP-0388): the mechanisms a stream is offered, running them step by step,
 * and everything about failures — counting them on the stream (3 wrong
 * credentials or 5 failures of any kind close it with `policy-violation`),
 * throttling guessers per address across connections, and the one log line
 * per failure that fail2ban reads:
 *
 *     authentication failed for juliet@example.com from 203.0.113.7 (PLAIN: not-authorized)
 *
 * The protocols differ only in how they put challenges, failures and
 * success on the wire ({@link Wire}).
 *
 * @example
 * ```ts
 * const done = await exchange.begin(session, "SCRAM-SHA-1", data, wire);
 * if (done) wire.success(done); // authenticated as done.username
 * ```
 * @module
 */
import type { Module } from "../../core/moduleapi.ts";
import type { Session } from "../../core/session.ts";
import { prepNode } from "../../core/jid.ts";
import {
  availableMechanisms,
  type ChannelBinding,
  createMechanism,
  type SaslMechanism,
  type SaslProfile,
  type SaslStep,
} from "../../core/sasl/mechanisms.ts";
import type { KeyedThrottle } from "../../core/throttle.ts";
import { isPromise } from "../../core/events.ts";
import type { Metric } from "../../core/metrics.ts";

const MAX_FAILURES = 3;
const MAX_ATTEMPTS = 5;
/** Conditions that are wrong credentials (or refused as a guesser). */
const COUNTED = new Set(["not-authorized", "temporary-auth-failure"]);

/** How a protocol puts an exchange on the wire. */
export interface Wire {
  challenge(session: Session, data: Uint8Array): void;
  failure(session: Session, condition: string, text?: string): void;
}

/** A finished exchange: who authenticated, with what. */
export interface Authenticated {
  username: string;
  mechanism: string;
  /** Data for the client with the success (SCRAM's server signature). */
  data?: Uint8Array;
  /** The FAST token used, if one was. */
  token?: string;
}

interface SaslState {
  mechanism: SaslMechanism | undefined;
  /** Wrong credentials so far. */
  failures: number;
  /** Failures of any other kind so far. */
  attempts: number;
}

export interface ExchangeOptions {
  requireEncryption: boolean;
  allowUnencryptedPlain: boolean;
  disabled: Set<string>;
  failures: KeyedThrottle;
  fakeSaltKey: Uint8Array;
  /** FAST tokens, when the FAST part is on (with `count`, only those that have not seen it). */
  fastTokens?: (
    user: string,
    mechanism: string,
    count?: number,
  ) => Promise<{ id: string; key: Uint8Array }[]>;
}

export class SaslExchange {
  /** `cadence_mod_saslauth_authentications_total{host, result}`. */
  private succeeded: Metric;
  private failed: Metric;

  constructor(private module: Module, private opts: ExchangeOptions) {
    const m = module.metric("counter", "authentications", {
      help: "SASL authentications that succeeded, and that failed (wrong or refused credentials)",
      labels: ["result"],
    });
    this.succeeded = m.with("success");
    this.failed = m.with("failure");
  }

  /**
   * The host's auth provider, with usernames nodeprepped before lookups;
   * `fastCount`: the replay counter a FAST login came with.
   */
  profile(fastCount?: number): SaslProfile {
    const p = this.module.users.saslProfile();
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
    if (this.opts.fastTokens) {
      const tokens = this.opts.fastTokens;
      out.fastTokens = (u, mech) => {
        const node = prepNode(u);
        return node === undefined ? Promise.resolve([]) : tokens(node, mech, fastCount);
      };
    }
    return out;
  }

  /** tls-server-end-point of the certificate this connection was actually given. */
  binding(session: Session): ChannelBinding | undefined {
    if (!session.secure) return undefined;
    const tls = this.module.tlsFor(session.tlsHost ?? this.module.host);
    return tls ? { type: "tls-server-end-point", data: tls.endPoint } : undefined;
  }

  /** The password mechanisms a stream is offered (none before TLS when it is required). */
  mechanismsFor(session: Session): string[] {
    if (this.opts.requireEncryption && !session.secure) return [];
    return availableMechanisms(this.profile(), {
      secure: session.secure,
      allowUnencryptedPlain: this.opts.allowUnencryptedPlain,
      channelBinding: this.binding(session),
      disabled: this.opts.disabled,
    });
  }

  private state(session: Session): SaslState {
    return (session.sasl_handler ??= {
      mechanism: undefined,
      failures: 0,
      attempts: 0,
    }) as SaslState;
  }

  /**
   * Starts an exchange with mechanism `name` (one of `offered`) and its
   * initial data; resolves with who authenticated once it succeeds, else
   * undefined (a challenge or a failure went out on the wire).
   */
  async begin(
    session: Session,
    name: string,
    data: Uint8Array | undefined,
    wire: Wire,
    offered: string[],
    fastCount?: number,
  ): Promise<Authenticated | undefined> {
    if (this.opts.requireEncryption && !session.secure) {
      this.fail(session, wire, "encryption-required");
      return undefined;
    }
    if (!this.opts.failures.allowed(session.ipGroup)) {
      // This address failed too often lately: no password is checked for now.
      this.failed.add();
      this.logFailure(
        session,
        name,
        "temporary-auth-failure (too many failures from this address)",
      );
      this.fail(
        session,
        wire,
        "temporary-auth-failure",
        "Too many failed attempts; try again later",
      );
      return undefined;
    }
    const mechanism = offered.includes(name)
      ? createMechanism(name, this.profile(fastCount), {
        channelBinding: this.binding(session),
        fakeSaltKey: this.opts.fakeSaltKey,
      })
      : undefined;
    if (!mechanism) {
      this.fail(session, wire, "invalid-mechanism");
      return undefined;
    }
    if (data === undefined) {
      this.fail(session, wire, "incorrect-encoding");
      return undefined;
    }
    this.state(session).mechanism = mechanism;
    return this.handle(session, await mechanism.step(data), wire);
  }

  /** The client's next message in the exchange under way. */
  async respond(
    session: Session,
    data: Uint8Array | undefined,
    wire: Wire,
  ): Promise<Authenticated | undefined> {
    const mechanism = this.state(session).mechanism;
    if (!mechanism) {
      this.fail(session, wire, "malformed-request", "No authentication in progress");
      return undefined;
    }
    if (data === undefined) {
      this.fail(session, wire, "incorrect-encoding");
      return undefined;
    }
    return this.handle(session, await mechanism.step(data), wire);
  }

  abort(session: Session, wire: Wire): void {
    this.fail(session, wire, "aborted");
  }

  private handle(session: Session, step: SaslStep, wire: Wire): Authenticated | undefined {
    if (step.status === "challenge") {
      wire.challenge(session, step.data);
      return undefined;
    }
    const mechanism = this.state(session).mechanism?.name ?? "?";
    if (step.status === "failure") {
      this.failed.add();
      if (step.condition === "not-authorized") {
        this.opts.failures.take(session.ipGroup);
        this.logFailure(session, mechanism, step.condition, step.username);
      }
      const r = this.module.fireEvent("authentication-failure", {
        session,
        condition: step.condition,
        text: step.text,
      });
      if (isPromise(r)) Promise.resolve(r).catch(this.module.logError);
      this.fail(session, wire, step.condition, step.text);
      return undefined;
    }
    this.state(session).mechanism = undefined;
    const refused = this.module.authenticate(session, step.username);
    if (refused !== true) {
      this.failed.add();
      this.logFailure(session, mechanism, "temporary-auth-failure", step.username);
      this.fail(session, wire, "temporary-auth-failure", refused);
      return undefined;
    }
    session.sasl_handler = undefined;
    this.succeeded.add();
    this.module.log.info("authenticated {user}@{host}", {
      user: session.username,
      host: this.module.host,
    });
    return { username: step.username, mechanism, data: step.data, token: step.token };
  }

  /** Sends a failure and closes the stream past the retries RFC 6120 §6.4.5 allows. */
  fail(session: Session, wire: Wire, condition: string, text?: string): void {
    wire.failure(session, condition, text);
    const st = this.state(session);
    st.mechanism = undefined;
    // Wrong credentials close the stream at the third; any failure (an abort, a
    // malformed exchange, a mechanism a client falls back from) at the fifth,
    // RFC 6120's most, so that none repeats without end.
    if (COUNTED.has(condition)) st.failures++;
    if (COUNTED.has(condition) ? st.failures >= MAX_FAILURES : ++st.attempts >= MAX_ATTEMPTS) {
      session.close({
        condition: "policy-violation",
        text: "Too many failed authentication attempts",
      });
    }
  }

  /** The one log line per failed attempt (documented: fail2ban filters match it). */
  logFailure(session: Session, mechanism: string, condition: string, user?: string): void {
    this.module.log.info("authentication failed for {jid} from {ip} ({mechanism}: {condition})", {
      jid: user === undefined ? `(unknown)@${this.module.host}` : `${user}@${this.module.host}`,
      ip: session.ip,
      mechanism,
      condition,
    });
  }
}

/** Base64 for SASL data; "=" is empty. */
export function encode(data: Uint8Array): string {
  return data.length === 0 ? "=" : data.toBase64();
}

/** Base64 payload of a SASL element; "=" or nothing is empty; undefined when invalid. */
export function decode(text: string): Uint8Array | undefined {
  const t = text.trim();
  if (t === "" || t === "=") return new Uint8Array(0);
  try {
    // RFC 6120 §6.4.2: padded, no whitespace, nothing after the padding.
    return Uint8Array.fromBase64(t, { lastChunkHandling: "strict" });
  } catch {
    return undefined;
  }
}
