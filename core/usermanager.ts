/**
 * Accounts of a VirtualHost: Prosody's `core/usermanager.lua`. The work is
 * done by the host's auth provider (`authentication` option: a module
 * `auth_<name>` that calls `module.provides("auth", provider)`); this wraps
 * it with the events and the storage purge that go with account changes.
 *
 * @example
 * ```ts
 * const users = server.users("localhost")!;
 * await users.createUser("juliet", "s3cret");
 * await users.testPassword("juliet", "s3cret"); // true
 * ```
 * @module
 */
import type { EventBus } from "./events.ts";
import type { SaslProfile } from "./sasl/types.ts";

/** What account changes need beyond the provider: the server's events, and storage to purge. */
export interface UserManagerDeps {
  /** The server-wide bus (`user-deleted`, `user-password-changed`). */
  events: EventBus;
  /** Removes everything stored for a user. */
  purge(host: string, username: string): Promise<void> | void;
}

/** What an auth module provides. */
export interface AuthProvider {
  name: string;
  testPassword(username: string, password: string): Promise<boolean>;
  setPassword(username: string, password: string): Promise<void>;
  userExists(username: string): Promise<boolean>;
  createUser(username: string, password: string): Promise<void>;
  deleteUser(username: string): Promise<void>;
  users(): AsyncIterable<string>;
  /** What SASL may ask of this provider (PLAIN needs testPassword, SCRAM its credentials). */
  saslProfile(): SaslProfile;
}

export class UserError extends Error {}

export class UserManager {
  constructor(
    readonly host: string,
    readonly provider: AuthProvider,
    private deps: UserManagerDeps,
  ) {}

  userExists(username: string): Promise<boolean> {
    return this.provider.userExists(username);
  }

  testPassword(username: string, password: string): Promise<boolean> {
    return this.provider.testPassword(username, password);
  }

  async createUser(username: string, password: string): Promise<void> {
    if (await this.provider.userExists(username)) {
      throw new UserError(`user ${username}@${this.host} already exists`);
    }
    await this.provider.createUser(username, password);
  }

  async setPassword(username: string, password: string): Promise<void> {
    if (!await this.provider.userExists(username)) {
      throw new UserError(`user ${username}@${this.host} does not exist`);
    }
    await this.provider.setPassword(username, password);
    await this.deps.events.fire("user-password-changed", { username, host: this.host });
  }

  /** Deletes the account, fires `user-deleted`, then purges the user's stored data. */
  async deleteUser(username: string): Promise<void> {
    if (!await this.provider.userExists(username)) {
      throw new UserError(`user ${username}@${this.host} does not exist`);
    }
    await this.provider.deleteUser(username);
    await this.deps.events.fire("user-deleted", { username, host: this.host });
    await this.deps.purge(this.host, username);
  }

  users(): AsyncIterable<string> {
    return this.provider.users();
  }

  saslProfile(): SaslProfile {
    return this.provider.saslProfile();
  }
}
