/**
 * Stream management with npm:@xmpp/client (its stream-management package,
 * on by default, enabled and resumed inline with SASL2): the TCP connection
 * is cut, the client reconnects on its own and resumes the same session,
 * getting what was sent meanwhile.
 */
import assert from "node:assert/strict";
import { client } from "@xmpp/client";
import { startTestServer } from "../helpers/server.ts";
import { connectXmpp, xml, type XmlElement } from "../helpers/xmppclient.ts";

Deno.test("@xmpp/client resumes after its socket is cut and gets the message sent meanwhile", async () => {
  // Plain TCP: over @xmpp/tls on Deno, the client's empty write at a resumption
  // with nothing to send again never completes, and it never reports "resumed".
  const t = await startTestServer({ c2s_require_encryption: false, modules_disabled: ["tls"] });
  await t.server.users("localhost")!.createUser("alice", "alice pw");
  await t.server.users("localhost")!.createUser("bob", "bob pw");
  const bob = await connectXmpp(t.port, "bob", "bob pw", "desk");
  const alice = client({
    service: `xmpp://127.0.0.1:${t.port}`,
    domain: "localhost",
    resource: "phone",
    username: "alice",
    password: "alice pw",
  });
  alice.reconnect.delay = 200;
  const bodies: string[] = [];
  alice.on("stanza", (s: XmlElement) => {
    if (s.is("message")) bodies.push(s.getChildText("body"));
  });
  let resumed = 0, onlines = 0, jid = "";
  alice.streamManagement.on("resumed", () => resumed++);
  alice.on("online", (address: { toString(): string }) => {
    onlines++;
    jid = address.toString();
  });
  alice.on("error", () => {});
  const until = async (what: string, test: () => boolean, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await alice.start();
    await until("stream management is on", () => alice.streamManagement.enabled);
    // Bound with Bind2 (SASL2, XEP-0386): the server picked the resource.
    assert.match(jid, /^alice@localhost\/phone\.[A-Za-z0-9_-]{8}$/);
    const session = t.server.sessions.full.get(jid);
    const say = (body: string) =>
      bob.send(xml("message", { to: jid, type: "chat" }, xml("body", {}, body)));
    await say("one");
    await until("one arrives", () => bodies.includes("one"));
    // The socket dies under the client (as when a phone loses its network).
    alice.socket.destroy();
    await until(
      "the session hibernates",
      () => t.server.sessions.full.get(jid)?.hibernating === true,
    );
    await say("two");
    await until("alice resumed", () => resumed === 1);
    await until("two arrives", () => bodies.includes("two"));
    assert.equal(onlines, 1, "resumed, not a new session");
    assert.equal(t.server.sessions.full.get(jid), session);
    assert.deepEqual(bodies, ["one", "two"]);
  } finally {
    alice.reconnect.stop();
    await Promise.race([alice.stop().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
    await bob.stop();
    await t.stop();
  }
});
