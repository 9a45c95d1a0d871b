/**
 * The message archive with an independent client (Debian's python3-slixmpp,
 * xep_0313 with xep_0059 paging): 2,000 messages, many of them within the
 * same second, paged through oldest first and newest first, 50 at a time —
 * every message once, in the order it was sent, both ways.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";
import { slixmppReady } from "../helpers/slixmpp.ts";

const SCRIPT = fileURLToPath(new URL("./slixmpp_mam.py", import.meta.url));
const N = 2000;

Deno.test("slixmpp pages through 2,000 archived messages both ways, in the order they were sent", async () => {
  if (!await slixmppReady()) return;
  const t = await startTestServer({ limits: false });
  await t.server.users("localhost")!.createUser("alice", "alice pw");
  await t.server.users("localhost")!.createUser("bob", "bob pw");
  const bob = await RawClient.connectTls(t.tlsPort);
  try {
    await bob.login("bob", "bob pw", "desk");
    let burst = "";
    for (let i = 0; i < N; i++) {
      burst += `<message to='alice@localhost' type='chat'><body>m${i}</body></message>`;
    }
    bob.send(burst);
    bob.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await bob.waitFor(/id="sync"/, 30_000);
    // Many of them share a second: the archive's order must not come from timestamps.
    const archive = t.server.storage.open("localhost", "archive", "archive");
    const items = await archive.find("alice");
    assert.equal(items.length, N);
    const seconds = new Set(items.map((i) => Math.floor(i.when)));
    assert.ok(seconds.size < N / 10, `${seconds.size} distinct seconds for ${N} messages`);

    const out = await new Deno.Command("/usr/bin/python3", {
      args: [SCRIPT, "alice@localhost/phone", "alice pw", String(t.port)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const all = text + new TextDecoder().decode(out.stderr);
    const sent = Array.from({ length: N }, (_, i) => `m${i}`);
    const forward = /^FORWARD (\d+) (.*)$/m.exec(text);
    const backward = /^BACKWARD (\d+) (.*)$/m.exec(text);
    assert.ok(forward && backward, all.slice(-3000));
    assert.deepEqual(forward[2].split(","), sent);
    assert.deepEqual(backward[2].split(","), [...sent].reverse());
    assert.match(text, /DONE/);
  } finally {
    bob.close();
    await t.stop();
  }
});
