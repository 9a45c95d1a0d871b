/**
 * Client State Indication with an independent client (Debian's
 * python3-slixmpp, plugins xep_0352 and xep_0085): once it says it is
 * inactive, its contact's presence and chat states wait until a message with
 * a body comes, then arrive together, in order, before it.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startTestServer } from "../helpers/server.ts";
import { slixmppReady } from "../helpers/slixmpp.ts";
import { connectXmpp, xml } from "../helpers/xmppclient.ts";

const SCRIPT = fileURLToPath(new URL("./slixmpp_csi.py", import.meta.url));

Deno.test("slixmpp goes inactive: presence and chat states wait for the next message with a body", async () => {
  if (!await slixmppReady()) return;
  const t = await startTestServer();
  for (const [user, contact] of [["alice", "bob"], ["bob", "alice"]]) {
    await t.server.users("localhost")!.createUser(user, `${user} pw`);
    await t.server.rosters.modify(user, "localhost", (r) => {
      r.items.set(`${contact}@localhost`, { subscription: "both", groups: [] });
      return [`${contact}@localhost`];
    });
  }
  const bob = await connectXmpp(t.port, "bob", "bob pw", "desk");
  await bob.send(xml("presence"));
  const child = new Deno.Command("/usr/bin/python3", {
    args: [SCRIPT, "alice@localhost/phone", "alice pw", String(t.port)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errors = new Response(child.stderr).text();
  const out: string[] = [];
  try {
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let nl;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        out.push(line);
        if (line !== "INACTIVE") continue;
        const to = "alice@localhost/phone";
        await bob.send(xml("presence", {}, xml("show", {}, "away")));
        await bob.send(
          xml(
            "message",
            { to, type: "chat" },
            xml("composing", { xmlns: "http://jabber.org/protocol/chatstates" }),
          ),
        );
        await new Promise((r) => setTimeout(r, 800)); // they must wait all this time
        await bob.send(xml("message", { to, type: "chat" }, xml("body", {}, "wake")));
      }
    }
    const text = out.join("\n") + "\n" + await errors;
    assert.match(text, /^ORDER presence:away,state:composing,body:wake$/m, text);
    // All three arrived together, at the wake-up, not 800 ms apart.
    const spread = Number(/^SPREAD ([\d.]+)$/m.exec(text)?.[1]);
    assert.ok(spread < 0.4, `spread ${spread} s:\n${text}`);
    assert.match(text, /DONE/);
  } finally {
    await bob.stop();
    await t.stop();
  }
});
