/**
 * Writes mutual (`both`) subscriptions between one user and N contacts into
 * a server's data directory through the server's own storage API, before
 * the measured server starts — far faster than subscribing over XMPP.
 * Run as a script, with the server stopped:
 *
 *     deno run -A bench/seed_rosters.ts CONFIG HUB CONTACT_PREFIX COUNT
 *
 * The hub's roster lists `<prefix>0@localhost` … `<prefix><COUNT-1>@localhost`;
 * each contact's roster lists the hub. Rosters have the shape
 * core/rostermanager.ts stores (keyval store `roster`, host "localhost").
 * @module
 */
import { readConfig } from "../core/config.ts";
import { ModuleManager } from "../core/modulemanager.ts";
import { Server } from "../core/server.ts";

const HOST = "localhost";

/** A stored roster whose every contact has a mutual subscription. */
function mutual(contacts: string[]) {
  const items: Record<string, { subscription: "both"; groups: string[] }> = {};
  for (const jid of contacts) items[jid] = { subscription: "both", groups: [] };
  return { items, pending: {}, version: 1 };
}

async function main(args: string[]): Promise<void> {
  const [configFile, hub, prefix, countText] = args;
  const count = Number(countText);
  if (!configFile || !hub || !prefix || !Number.isInteger(count) || count < 1) {
    throw new Error("usage: seed_rosters.ts CONFIG HUB CONTACT_PREFIX COUNT");
  }
  const contacts = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  const server = new Server(await readConfig(configFile, ModuleManager.builtinDir));
  await server.activate();
  try {
    const rosters = server.storage.open(HOST, "roster", "keyval");
    await rosters.set(hub, mutual(contacts.map((c) => `${c}@${HOST}`)));
    for (const c of contacts) await rosters.set(c, mutual([`${hub}@${HOST}`]));
  } finally {
    await server.stop("rosters seeded");
  }
}

if (import.meta.main) await main(Deno.args);
