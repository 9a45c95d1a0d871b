/**
 * Who is logged in to the web admin: random session tokens (the
 * `cadence_admin` cookie) mapped to the admin's JID and a CSRF token, with
 * an idle expiry and a cap on how many there are; failed logins counted per
 * address; the cookie, CSRF and Origin checks.
 *
 * @example
 * ```ts
 * const sessions = new AdminSessions(30 * 60_000, 50);
 * const s = sessions.create("admin@example.com", ["example.com"]);
 * sessions.get(s.token)?.jid; // "admin@example.com"
 * ```
 * @module
 */

export const COOKIE = "cadence_admin";

export interface AdminSession {
  token: string;
  jid: string;
  /** The hosts this admin manages. */
  hosts: string[];
  csrf: string;
  /** When it expires unless used again (ms since the epoch). */
  expires: number;
  /** A notice for the next page (an action's outcome). */
  flash?: string;
}

/** 32 random bytes, base64url. */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** Compares secrets in time that depends on their length only. */
export function sameSecret(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** The admin sessions: least recently used first, so the cap drops the stalest. */
export class AdminSessions {
  private map = new Map<string, AdminSession>();

  constructor(private idleMs: number, private max: number, private now = () => Date.now()) {}

  create(jid: string, hosts: string[]): AdminSession {
    this.prune();
    while (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    const s = { token: randomToken(), jid, hosts, csrf: randomToken(), expires: 0 };
    s.expires = this.now() + this.idleMs;
    this.map.set(s.token, s);
    return s;
  }

  /** The live session of a token (its idle time starts again), or undefined. */
  get(token: string | undefined): AdminSession | undefined {
    if (!token) return undefined;
    const s = this.map.get(token);
    if (!s) return undefined;
    this.map.delete(token);
    if (s.expires <= this.now()) return undefined;
    s.expires = this.now() + this.idleMs;
    this.map.set(token, s);
    return s;
  }

  delete(token: string): void {
    this.map.delete(token);
  }

  /** Ends every session of an admin (its account went). */
  deleteJid(jid: string): void {
    for (const [t, s] of this.map) if (s.jid === jid) this.map.delete(t);
  }

  get size(): number {
    return this.map.size;
  }

  private prune(): void {
    const now = this.now();
    for (const [t, s] of this.map) if (s.expires <= now) this.map.delete(t);
  }
}

/** Failed logins per address in a sliding minute; bounded in the addresses it keeps. */
export class LoginLimiter {
  private failures = new Map<string, number[]>();

  constructor(
    private perMinute: number,
    private maxAddresses = 10_000,
    private now = () => Date.now(),
  ) {}

  /** Whether this address has used up its attempts for now. */
  limited(ip: string): boolean {
    return this.recent(ip).length >= this.perMinute;
  }

  failed(ip: string): void {
    const list = this.recent(ip);
    list.push(this.now());
    this.failures.delete(ip);
    if (this.failures.size >= this.maxAddresses) {
      this.failures.delete(this.failures.keys().next().value!);
    }
    this.failures.set(ip, list);
  }

  private recent(ip: string): number[] {
    const since = this.now() - 60_000;
    const list = (this.failures.get(ip) ?? []).filter((t) => t > since);
    if (list.length === 0) this.failures.delete(ip);
    return list;
  }
}

/** A cookie's value from the request, if it has it. */
export function readCookie(request: Request, name: string): string | undefined {
  const header = request.headers.get("cookie");
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie header of a session (or of its end, when `token` is empty). */
export function sessionCookie(token: string, path: string, secure: boolean): string {
  return `${COOKIE}=${token}; Path=${path}; HttpOnly; SameSite=Strict` +
    (secure ? "; Secure" : "") + (token ? "" : "; Max-Age=0");
}

/**
 * Whether a POST may come from where it says: no Origin header (an old
 * browser, a script), or one naming this server as the request or the
 * configured external URL does.
 */
export function originAllowed(request: Request, baseUrl: string): boolean {
  const origin = request.headers.get("origin");
  if (origin === null) return true;
  if (origin === "null") return false;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  if (host === request.headers.get("host")) return true;
  try {
    return new URL(baseUrl).origin === origin;
  } catch {
    return false;
  }
}
