/**
 * The client side of an XMPP login, step by step, as the load generator
 * performs it: stream header → features → (STARTTLS) → SASL PLAIN or
 * SCRAM-SHA-1 → stream restart → bind → initial presence, and the clean
 * close after it. Matching is by string on the server's output.
 * @module
 */
import { BenchConnection, type Target } from "./connection.ts";
import { ScramClient } from "../core/sasl/scram.ts";

/** SaltedPassword per account, kept across logins as real clients keep it. */
const saltedPasswords = new Map<string, Uint8Array>();

/** An account to log in with. */
export interface Account {
  username: string;
  password: string;
}

/** How to log in. */
export interface LoginMode {
  /** SASL mechanism. */
  mechanism: "PLAIN" | "SCRAM-SHA-1";
  /** Upgrade with STARTTLS before authenticating. */
  starttls: boolean;
  /** Limit for each wait on the server, in ms. */
  stepTimeoutMs: number;
}

const HEADER = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' " +
  "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
const SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const FEATURES_END = /<\/stream:features>|<stream:features\s*\/>/;
const PROCEED = /<proceed[^>]*>/;
const CHALLENGE = /<challenge[^>]*>([^<]*)<\/challenge>/;
const SUCCESS = /<success[^>]*\/>|<success[^>]*>([^<]*)<\/success>/;
const BOUND = /<jid>([^<]*)<\/jid>/;
const STREAM_END = /<\/stream:stream>/;

/** Opens a bound session with initial presence sent; the caller closes it. */
export async function openSession(
  target: Target,
  account: Account,
  resource: string,
  mode: LoginMode,
): Promise<BenchConnection> {
  const t = mode.stepTimeoutMs;
  const conn = await BenchConnection.open(target, t);
  try {
    conn.send(HEADER);
    await conn.waitFor(FEATURES_END, t);
    if (mode.starttls) {
      conn.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      await conn.waitFor(PROCEED, t);
      await conn.startTls(t);
      conn.send(HEADER);
      await conn.waitFor(FEATURES_END, t);
    }
    if (mode.mechanism === "PLAIN") await authPlain(conn, account, t);
    else await authScram(conn, account, t);
    conn.send(HEADER);
    await conn.waitFor(FEATURES_END, t);
    conn.send(
      "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" +
        `<resource>${resource}</resource></bind></iq>`,
    );
    conn.jid = (await conn.waitFor(BOUND, t))[1];
    conn.send("<presence/>");
    return conn;
  } catch (e) {
    conn.destroy();
    throw e;
  }
}

/** Closes a session cleanly: `</stream:stream>`, then waits for the server's close. */
export async function closeSession(conn: BenchConnection, timeoutMs: number): Promise<void> {
  try {
    conn.send("</stream:stream>");
    await conn.waitForEnd(STREAM_END, timeoutMs);
  } finally {
    conn.destroy();
  }
}

/** One complete login: open a session, then close it. */
export async function login(
  target: Target,
  account: Account,
  resource: string,
  mode: LoginMode,
): Promise<void> {
  const conn = await openSession(target, account, resource, mode);
  await closeSession(conn, mode.stepTimeoutMs);
}

async function authPlain(conn: BenchConnection, account: Account, t: number) {
  const payload = btoa(`\0${account.username}\0${account.password}`);
  conn.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${payload}</auth>`);
  await conn.waitFor(SUCCESS, t);
}

async function authScram(conn: BenchConnection, account: Account, t: number) {
  const scram = new ScramClient("SHA-1", account.username, account.password, {
    cache: saltedPasswords,
  });
  conn.send(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${btoa(scram.first())}</auth>`);
  const challenge = await conn.waitFor(CHALLENGE, t);
  conn.send(`<response xmlns='${SASL}'>${btoa(await scram.final(atob(challenge[1])))}</response>`);
  const success = await conn.waitFor(SUCCESS, t);
  const final = success[1];
  if (!final || final === "=") throw new Error("SCRAM success without server signature");
  scram.verify(atob(final));
}
