/**
 * PEP with an independent client (Debian's python3-slixmpp: xep_0060,
 * xep_0163, xep_0115): an OMEMO device list and bundle published with
 * access_model=open reach a contact who shows interest through her caps,
 * are refused a different precondition, and can be fetched by a stranger.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startTestServer } from "../helpers/server.ts";
import { slixmppReady } from "../helpers/slixmpp.ts";

const SCRIPT = fileURLToPath(new URL("./slixmpp_pep.py", import.meta.url));

Deno.test("slixmpp publishes OMEMO nodes open; a contact is notified through caps, a stranger fetches them", async () => {
  if (!await slixmppReady()) return;
  const t = await startTestServer();
  try {
    for (const user of ["alice", "bob", "carol"]) {
      await t.server.users("localhost")!.createUser(user, `${user} pw`);
    }
    for (const [user, contact] of [["alice", "carol"], ["carol", "alice"]]) {
      await t.server.rosters.modify(user, "localhost", (r) => {
        r.items.set(`${contact}@localhost`, { subscription: "both", groups: [] });
        return [`${contact}@localhost`];
      });
    }
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [SCRIPT, String(t.port)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.match(text, /^NOTIFIED urn:xmpp:omemo:2:devices current$/m, text);
    assert.match(text, /^PRECONDITION conflict True$/m, text);
    assert.match(
      text,
      /^FETCHED urn:xmpp:omemo:2:devices current <devices xmlns="urn:xmpp:omemo:2"><device id="12345" \/><\/devices>$/m,
      text,
    );
    assert.match(
      text,
      /^FETCHED urn:xmpp:omemo:2:bundles 12345 <bundle xmlns="urn:xmpp:omemo:2"><spk id="1">c3Br<\/spk><\/bundle>$/m,
      text,
    );
    assert.match(text, /^DONE$/m, text);
  } finally {
    await t.stop();
  }
});
