/**
 * Creates accounts, and optionally mutual (`both`) subscriptions between one
 * user and N contacts, in a Cadence data directory through the server's own
 * user and storage APIs, before the measured server starts — far faster
 * than one `main.ts register` per account. Run as a script, with the
 * server stopped:
 *
 *     deno run -A bench/seed_accounts.ts CONFIG SETUP_JSON
 *
 * SETUP_JSON holds an {@link AccountSetup}: `{ accounts: [{ username,
 * password }], rosters?: { hub, contacts } }`. Rosters have the shape
 * core/rostermanager.ts stores (keyval store `roster`, host "localhost").
 * @module
 */
import { readConfig } from "../core/config.ts";
import { ModuleManager } from "../core/modulemanager.ts";
import { Server } from "../core/server.ts";
import type { AccountSetup } from "./servers.ts";

/** A stored roster whose every contact has a mutual subscription. */
function mutual(contacts: string[]) {
  const items: Record<string, { subscription: "both"; groups: string[] }> = {};
  for (const jid of contacts) items[jid] = { subscription: "both", groups: [] };
  return { items, pending: {}, version: 1 };
}

async function main(args: string[]): Promise<void> {
  const [configFile, setupFile] = args;
  if (!configFile || !setupFile) throw new Error("usage: seed_accounts.ts CONFIG SETUP_JSON");
  const setup: AccountSetup = JSON.parse(await Deno.readTextFile(setupFile));
  const HOST = setup.host ?? "localhost";
  const server = new Server(await readConfig(configFile, ModuleManager.builtinDir));
  await server.activate();
  try {
    const users = server.users(HOST);
    if (!users) throw new Error(`no host ${HOST}`);
    for (const a of setup.accounts) await users.createUser(a.username, a.password);
    if (setup.rosters) {
      const { hub, contacts } = setup.rosters;
      const rosters = server.storage.open(HOST, "roster", "keyval");
      await rosters.set(hub, mutual(contacts.map((c) => `${c}@${HOST}`)));
      for (const c of contacts) await rosters.set(c, mutual([`${hub}@${HOST}`]));
    }
  } finally {
    await server.stop("accounts seeded");
  }
}

if (import.meta.main) await main(Deno.args);
