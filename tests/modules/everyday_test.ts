/**
 * The everyday extensions with real npm:@xmpp/client sessions: chat to a
 * bare JID with two resources at different priorities, carbons, vCard and
 * private storage, blocking, and offline messages across a restart.
 */
import assert from "node:assert/strict";
import { connectXmpp, type TestXmpp, xml, type XmlElement } from "../helpers/xmppclient.ts";
import { startTestServer } from "../helpers/server.ts";

const body = (text: string) => (s: XmlElement) =>
  s.is("message") && s.getChildText("body") === text;

Deno.test("@xmpp/client: priorities, carbons, vCard, private, blocking, offline after restart", async () => {
  let t = await startTestServer();
  const dataDir = t.dataDir;
  const clients: TestXmpp[] = [];
  const online = async (user: string, resource: string, priority = 0) => {
    const c = await connectXmpp(t.port, user, "pw", resource);
    clients.push(c);
    await c.send(xml("presence", {}, xml("priority", {}, String(priority))));
    await c.waitFor((s: XmlElement) => s.is("presence") && s.attrs.from === c.jid);
    return c;
  };
  try {
    for (const u of ["romeo", "juliet"]) await t.server.users("localhost")!.createUser(u, "pw");
    const romeo = await online("romeo", "orchard");
    const high = await online("juliet", "high", 5);
    const low = await online("juliet", "low", 1);

    await low.xmpp.iqCaller.request(
      xml("iq", { type: "set" }, xml("enable", { xmlns: "urn:xmpp:carbons:2" })),
    );
    await romeo.send(
      xml("message", { to: "juliet@localhost", type: "chat" }, xml("body", {}, "hi")),
    );
    await high.waitFor(body("hi"));
    const carbon = await low.waitFor((s: XmlElement) =>
      s.getChild("received", "urn:xmpp:carbons:2")
    );
    assert.equal(
      carbon.getChild("received").getChild("forwarded").getChild("message").getChildText("body"),
      "hi",
    );
    assert.equal(low.received.some(body("hi")), false);

    await high.xmpp.iqCaller.request(
      xml("iq", { type: "set" }, xml("vCard", { xmlns: "vcard-temp" }, xml("FN", {}, "Juliet"))),
    );
    const card = await romeo.xmpp.iqCaller.request(
      xml("iq", { type: "get", to: "juliet@localhost" }, xml("vCard", { xmlns: "vcard-temp" })),
    );
    assert.equal(card.getChild("vCard").getChildText("FN"), "Juliet");
    await high.xmpp.iqCaller.request(
      xml(
        "iq",
        { type: "set" },
        xml(
          "query",
          { xmlns: "jabber:iq:private" },
          xml("note", { xmlns: "urn:x:note" }, "remember"),
        ),
      ),
    );
    const note = await high.xmpp.iqCaller.request(
      xml(
        "iq",
        { type: "get" },
        xml("query", { xmlns: "jabber:iq:private" }, xml("note", { xmlns: "urn:x:note" })),
      ),
    );
    assert.equal(note.getChild("query").getChildText("note"), "remember");

    await high.xmpp.iqCaller.request(
      xml(
        "iq",
        { type: "set" },
        xml("block", { xmlns: "urn:xmpp:blocking" }, xml("item", { jid: "romeo@localhost" })),
      ),
    );
    await romeo.send(
      xml(
        "message",
        { to: "juliet@localhost", type: "chat", id: "b1" },
        xml("body", {}, "blocked?"),
      ),
    );
    const bounce = await romeo.waitFor((s: XmlElement) =>
      s.attrs.id === "b1" && s.attrs.type === "error"
    );
    assert.ok(bounce.getChild("error").getChild("service-unavailable"));
    await high.xmpp.iqCaller.request(
      xml("iq", { type: "set" }, xml("unblock", { xmlns: "urn:xmpp:blocking" })),
    );

    // Offline: juliet leaves; romeo writes twice; the server restarts.
    await high.stop();
    await low.stop();
    for (let i = 0; i < 40 && t.server.sessions.user("juliet", "localhost"); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    await romeo.send(
      xml("message", { to: "juliet@localhost", type: "chat" }, xml("body", {}, "first")),
    );
    await romeo.send(
      xml("message", { to: "juliet@localhost", type: "chat" }, xml("body", {}, "second")),
    );
    await romeo.xmpp.iqCaller.request(
      xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
    );
    await romeo.stop();
    await t.stop({ keepData: true });
    t = await startTestServer({}, dataDir);
    const back = await connectXmpp(t.port, "juliet", "pw", "back");
    clients.push(back);
    const order: string[] = [];
    back.xmpp.on("stanza", (s: XmlElement) => {
      if (s.is("message")) order.push(s.getChildText("body"));
    });
    await back.send(xml("presence"));
    const m1 = await back.waitFor(body("first"));
    const m2 = await back.waitFor(body("second"));
    assert.deepEqual(order, ["first", "second"]);
    for (const m of [m1, m2]) assert.match(m.getChild("delay", "urn:xmpp:delay").attrs.stamp, /Z$/);
  } finally {
    for (const c of clients) await c.stop();
    await t.stop();
  }
});
