/**
 * Accounts with plaintext passwords at rest (Prosody's
 * mod_auth_internal_plain): for migrations and like-for-like benchmarks,
 * never the default. SCRAM works too, deriving the keys at each login.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { AuthProvider } from "../core/usermanager.ts";
import { deriveScramCredentials } from "../core/sasl/scram.ts";

interface PlainAccount {
  password: string;
}

export default function authInternalPlain(module: Module) {
  const accounts = module.openStore<PlainAccount>("accounts");

  const provider: AuthProvider = {
    name: "internal_plain",
    async testPassword(username, password) {
      const account = await accounts.get(username);
      return account !== null && account.password === password;
    },
    async setPassword(username, password) {
      await accounts.set(username, { password });
    },
    async userExists(username) {
      return (await accounts.get(username)) !== null;
    },
    async createUser(username, password) {
      await accounts.set(username, { password });
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
          // A stable salt per user keeps the exchange repeatable. Unknown users
          // cost the same derivation, so timing does not tell them apart.
          const salt = new Uint8Array(
            await crypto.subtle.digest("SHA-256", new TextEncoder().encode(module.host + username)),
          ).slice(0, 16);
          const creds = await deriveScramCredentials(hash, account?.password ?? "", salt, 4096);
          return account ? creds : null;
        },
      };
    },
  };
  module.provides("auth", provider as unknown as Record<string, unknown>);
}
