/**
 * The pubsub component with an independent client (Debian's python3-slixmpp,
 * xep_0060): create a node, subscribe, get the notifications of two
 * publishes, fetch the items, delete the node.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startTestServer } from "../helpers/server.ts";
import { slixmppReady } from "../helpers/slixmpp.ts";

const SCRIPT = fileURLToPath(new URL("./slixmpp_pubsub.py", import.meta.url));

Deno.test("slixmpp creates a node on the pubsub component, subscribes, is notified, fetches, deletes", async () => {
  if (!await slixmppReady()) return;
  const t = await startTestServer({
    components: { "pubsub.localhost": { module: "pubsub" } },
    admins: ["alice@localhost"], // who may create nodes
  });
  try {
    for (const user of ["alice", "bob"]) {
      await t.server.users("localhost")!.createUser(user, `${user} pw`);
    }
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [SCRIPT, String(t.port)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.match(text, /^EVENT n1 first\nEVENT n2 second$/m, text);
    assert.match(text, /^ITEMS n2$/m, text); // max_items defaults to 1: the newest
    assert.match(text, /^GONE item-not-found$/m, text);
    assert.match(text, /^DONE$/m, text);
  } finally {
    await t.stop();
  }
});
