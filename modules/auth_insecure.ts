/**
 * Accepts any password for any username: for tests only. Like Prosody's
 * mod_auth_insecure it refuses to load unless the configuration sets
 * `insecure_open_authentication` to the exact acknowledgement text.
 * Only PLAIN is offered (there are no credentials for SCRAM).
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { AuthProvider } from "../core/usermanager.ts";

export const ACKNOWLEDGEMENT = "Yes please, I know what I'm doing!";

export default function authInsecure(module: Module) {
  if (module.getOption("insecure_open_authentication") !== ACKNOWLEDGEMENT) {
    throw new Error(
      `authentication "insecure" accepts any password; it loads only with ` +
        `insecure_open_authentication = "${ACKNOWLEDGEMENT}"`,
    );
  }
  module.log.warn("insecure authentication is on: any password is accepted");
  const provider: AuthProvider = {
    name: "insecure",
    testPassword: () => Promise.resolve(true),
    setPassword: () => Promise.resolve(),
    userExists: () => Promise.resolve(true),
    createUser: () => Promise.resolve(),
    deleteUser: () => Promise.resolve(),
    users: async function* () {},
    saslProfile: () => ({ testPassword: () => Promise.resolve(true) }),
  };
  module.provides("auth", provider as unknown as Record<string, unknown>);
}
