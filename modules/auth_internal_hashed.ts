/**
 * Accounts with salted SCRAM hashes at rest (the default `authentication`).
 * The plain password is never stored: each account keeps one salt and the
 * SCRAM StoredKey/ServerKey for both SHA-1 and SHA-256, so SCRAM-SHA-1 and
 * SCRAM-SHA-256 both work (Prosody keeps one family; Cadence keeps both).
 * PLAIN is checked by deriving the SHA-256 keys from the password given — for
 * unknown users too, against a made-up account, so both take the same time.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { AuthProvider } from "../core/usermanager.ts";
import { deriveScramCredentials, type ScramHash } from "../core/sasl/scram.ts";

interface HashedAccount {
  salt: string;
  iterations: number;
  keys: Record<ScramHash, { storedKey: string; serverKey: string }>;
}

const ITERATIONS = 4096;

async function hashPassword(password: string, salt?: Uint8Array): Promise<HashedAccount> {
  salt ??= crypto.getRandomValues(new Uint8Array(16));
  const sha1 = await deriveScramCredentials("SHA-1", password, salt, ITERATIONS);
  const sha256 = await deriveScramCredentials("SHA-256", password, salt, ITERATIONS);
  return {
    salt: sha1.salt,
    iterations: ITERATIONS,
    keys: {
      "SHA-1": { storedKey: sha1.storedKey, serverKey: sha1.serverKey },
      "SHA-256": { storedKey: sha256.storedKey, serverKey: sha256.serverKey },
    },
  };
}

function sameText(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export default function authInternalHashed(module: Module) {
  const accounts = module.openStore<HashedAccount>("accounts");

  // Unknown users are checked against this made-up account, so that a wrong
  // username takes as long as a wrong password and reveals nothing.
  const nobody = hashPassword(crypto.randomUUID());
  nobody.catch(() => {});

  const provider: AuthProvider = {
    name: "internal_hashed",
    async testPassword(username, password) {
      const stored = await accounts.get(username);
      const account = stored ?? await nobody;
      const derived = await deriveScramCredentials(
        "SHA-256",
        password,
        Uint8Array.fromBase64(account.salt),
        account.iterations,
      );
      return sameText(derived.storedKey, account.keys["SHA-256"].storedKey) && stored !== null;
    },
    async setPassword(username, password) {
      await accounts.set(username, await hashPassword(password));
    },
    async userExists(username) {
      return (await accounts.get(username)) !== null;
    },
    async createUser(username, password) {
      await accounts.set(username, await hashPassword(password));
    },
    async deleteUser(username) {
      await accounts.set(username, null);
    },
    users() {
      return accounts.users();
    },
    saslProfile() {
      return {
        testPassword: (u, p) => provider.testPassword(u, p),
        scramCredentials: async (username, hash) => {
          const account = await accounts.get(username);
          const keys = account?.keys[hash];
          if (!account || !keys) return null;
          return { salt: account.salt, iterations: account.iterations, ...keys };
        },
      };
    },
  };
  module.provides("auth", provider as unknown as Record<string, unknown>);
}
