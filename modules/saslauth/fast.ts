/**
 * FAST tokens (XEP-0484): after a password login a client may ask for a
 * token, and log in with it next time in one round trip (HT-SHA-256-NONE),
 * without the password.
 *
 * Tokens are not stored. Each is derived, when needed, from a random value
 * kept in the database and a key kept in a file of its own
 * (`fast_key_file`, default `fast.key` in the data directory, mode 0600):
 * a copy of the database alone logs nobody in. Each client (by its SASL2
 * user-agent id) has two slots, as XEP-0484 §6 suggests: the token in use,
 * and a newer one handed out but not used yet; using the newer one retires
 * the older. A token used after half its life is rotated (a new one comes
 * with the success). Tokens live `fast_token_ttl` (21 days); a password
 * change revokes them all; `<fast invalidate='true'/>` revokes the one used;
 * a `count` not above the last one seen for a token is refused (replay).
 *
 * @example
 * ```ts
 * const fast = await FastTokens.open(module);
 * const { token, expiry } = await fast.issue("juliet", "uaid…", "HT-SHA-256-NONE");
 * await fast.keys("juliet", "HT-SHA-256-NONE"); // [{ id, key }] to check a login against
 * ```
 * @module
 */
import { createHash, createHmac } from "node:crypto";
import type { Module } from "../../core/moduleapi.ts";

/** One token: the random value it is derived from, its end, and the last count seen. */
interface Slot {
  nonce: string;
  expiry: number;
  issued: number;
  count: number;
}

/** A client's tokens (per user and user-agent id). */
interface ClientTokens {
  mechanism: string;
  current?: Slot;
  next?: Slot;
}

const encoder = new TextEncoder();
/** Clients with tokens per account: the oldest loses its tokens past it. */
const MAX_CLIENTS = 20;

export class FastTokens {
  private constructor(
    private module: Module,
    private key: Uint8Array,
    readonly ttlSeconds: number,
  ) {}

  /** Opens (creating it if need be) the key file. */
  static async open(module: Module): Promise<FastTokens> {
    const path = module.getOptionPath("fast_key_file", "fast.key")!;
    let raw: Uint8Array;
    try {
      raw = await Deno.readFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      raw = crypto.getRandomValues(new Uint8Array(32));
      await Deno.writeFile(path, raw, { mode: 0o600, createNew: true }).catch(async (e) => {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        raw = await Deno.readFile(path); // another host's instance made it first
      });
    }
    // A short key (a file cut off, or written by hand) would leave tokens guessable
    // from the database alone: refuse it rather than use it.
    if (raw.length < 32) {
      throw new Error(
        `the FAST key file ${path} holds ${raw.length} bytes, fewer than 32; remove it and ` +
          "Cadence makes a new one (tokens issued so far stop working)",
      );
    }
    const key = raw;
    const ttl = module.getOptionPeriod("fast_token_ttl", 21 * 86400);
    return new FastTokens(module, key, ttl);
  }

  private get store() {
    return this.module.openStore<ClientTokens>("fast_tokens", "map");
  }

  private get index() {
    return this.module.openStore<string[]>("fast_clients");
  }

  /** The token string of a slot: a keyed hash of its random value. */
  private token(user: string, client: string, slot: Slot): string {
    // node:crypto, not WebCrypto: synchronous, cheaper per login.
    const mac = createHmac("sha256", this.key).update(`${user}\0${client}\0${slot.nonce}`).digest();
    return "secret-token:fast-" + new Uint8Array(mac).toBase64({ alphabet: "base64url" });
  }

  /** A client's key in storage: a hash of its user-agent id. */
  private clientKey(userAgentId: string): string {
    const h = createHash("sha256").update(userAgentId).digest();
    return new Uint8Array(h).toBase64({ alphabet: "base64url" }).slice(0, 22);
  }

  /** Issues a new token for a client (into its "next" slot). */
  async issue(user: string, userAgentId: string, mechanism: string) {
    const client = this.clientKey(userAgentId);
    const now = Date.now();
    const slot: Slot = {
      nonce: crypto.getRandomValues(new Uint8Array(16)).toBase64(),
      issued: now,
      expiry: now + this.ttlSeconds * 1000,
      count: 0,
    };
    const old = await this.store.get(user, client);
    // Bound to one mechanism: a token asked for another replaces the client's tokens.
    const record: ClientTokens = old?.mechanism === mechanism
      ? { mechanism, current: old.current, next: slot }
      : { mechanism, next: slot };
    await this.store.set(user, client, record);
    const clients = ((await this.index.get(user)) ?? []).filter((c) => c !== client);
    clients.push(client);
    for (const gone of clients.splice(0, Math.max(0, clients.length - MAX_CLIENTS))) {
      await this.store.set(user, gone, null);
    }
    await this.index.set(user, clients);
    return { token: this.token(user, client, slot), expiry: new Date(slot.expiry) };
  }

  /**
   * The keys of a user's valid tokens for `mechanism`, to check a login
   * against; with `count`, only tokens that have not seen it or a higher one.
   */
  async keys(user: string, mechanism: string, count?: number) {
    const now = Date.now();
    const out: { id: string; key: Uint8Array }[] = [];
    for (const client of (await this.index.get(user)) ?? []) {
      const record = await this.store.get(user, client);
      if (!record || record.mechanism !== mechanism) continue;
      for (const name of ["next", "current"] as const) {
        const slot = record[name];
        if (!slot || slot.expiry <= now) continue;
        if (count !== undefined && count <= slot.count) continue; // a replay
        const token = this.token(user, client, slot);
        out.push({ id: `${client}:${name}`, key: encoder.encode(token) });
      }
    }
    return out;
  }

  /**
   * A token was used to log in: a newer one retires the older; the count is
   * recorded; with `invalidate` the token is revoked. Returns whether the
   * token is due for rotation (past half its life).
   */
  async used(user: string, id: string, opts: { count?: number; invalidate?: boolean }) {
    const [client, name] = id.split(":") as [string, "next" | "current"];
    const record = await this.store.get(user, client);
    const slot = record?.[name];
    if (!record || !slot) return false;
    const changed = opts.count !== undefined || opts.invalidate || name === "next";
    if (opts.count !== undefined) slot.count = opts.count;
    if (opts.invalidate) {
      delete record[name];
    } else if (name === "next") {
      record.current = slot; // the older token is retired (XEP-0484 §3.5)
      delete record.next;
    }
    // (A login with the current token and no count changes nothing: no write.)
    if (changed) await this.store.set(user, client, record.current || record.next ? record : null);
    return !opts.invalidate && Date.now() > slot.issued + (slot.expiry - slot.issued) / 2;
  }

  /** Revokes every token of a user (password changed, account deleted). */
  async revokeAll(user: string): Promise<void> {
    for (const client of (await this.index.get(user)) ?? []) {
      await this.store.set(user, client, null);
    }
    await this.index.set(user, null);
  }
}
