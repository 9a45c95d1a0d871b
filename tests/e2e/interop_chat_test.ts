/**
 * An independent client (Debian's python3-slixmpp) does what a chat user
 * does all day against Cadence: adds a contact, sees its presence, chats,
 * and gets a message that was sent while it was offline. The contact is an
 * npm:@xmpp/client session.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startTestServer } from "../helpers/server.ts";
import { slixmppReady } from "../helpers/slixmpp.ts";
import { connectXmpp, xml, type XmlElement } from "../helpers/xmppclient.ts";

const SCRIPT = fileURLToPath(new URL("./slixmpp_chat.py", import.meta.url));

function slixmpp(port: number, phase: string) {
  return new Deno.Command("/usr/bin/python3", {
    args: [SCRIPT, "alice@localhost", "alice pw", String(port), "bob@localhost", phase],
    stdout: "piped",
    stderr: "piped",
  }).output().then((r) => new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr));
}

Deno.test("slixmpp adds a contact, sees presence, chats, gets an offline message", async () => {
  if (!await slixmppReady()) return;
  const t = await startTestServer();
  const bob = await (async () => {
    await t.server.users("localhost")!.createUser("alice", "alice pw");
    await t.server.users("localhost")!.createUser("bob", "bob pw");
    const c = await connectXmpp(t.port, "bob", "bob pw", "desk");
    await c.roster();
    await c.send(xml("presence"));
    return c;
  })();
  try {
    const first = slixmpp(t.port, "contact");
    const request = await bob.waitFor(
      (s: XmlElement) =>
        s.is("presence") && s.attrs.type === "subscribe" && s.attrs.from === "alice@localhost",
      20_000,
    );
    assert.ok(request);
    await bob.send(xml("presence", { to: "alice@localhost", type: "subscribed" }));
    const chat = await bob.waitFor(
      (s: XmlElement) => s.is("message") && s.getChildText("body") === "Hello from slixmpp",
      20_000,
    );
    await bob.send(
      xml("message", { to: chat.attrs.from, type: "chat" }, xml("body", {}, "Hi alice")),
    );
    const out1 = await first;
    assert.match(out1, /SUBSCRIBED/, out1);
    assert.match(out1, /PRESENCE/, out1);
    assert.match(out1, /MESSAGE Hi alice live/, out1);
    assert.match(out1, /DONE/, out1);

    // alice is offline now: the message waits for her.
    for (let i = 0; i < 50 && t.server.sessions.user("alice", "localhost"); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(t.server.sessions.user("alice", "localhost"), undefined);
    await bob.send(
      xml(
        "message",
        { to: "alice@localhost", type: "chat" },
        xml("body", {}, "While you were away"),
      ),
    );
    const out2 = await slixmpp(t.port, "offline");
    assert.match(out2, /MESSAGE While you were away delayed/, out2);
    assert.match(out2, /DONE/, out2);
  } finally {
    await bob.stop();
    await t.stop();
  }
});
