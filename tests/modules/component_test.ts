/**
 * External components (XEP-0114) with a real component library
 * (npm:@xmpp/component): the handshake, stanzas both ways between a user
 * and the component's domain, the component answering its own disco, a
 * from outside its domain refused, a wrong secret, an unknown domain, a
 * second connection, and stanzas while it is away.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { createHash } from "node:crypto";
import { component, xml } from "@xmpp/component";
import { freePort, startTestServer } from "../helpers/server.ts";
import { connectXmpp, type XmlElement } from "../helpers/xmppclient.ts";

const DOMAIN = "gw.localhost";
const SECRET = "s3cret";

// deno-lint-ignore no-explicit-any
type Component = any;

/** Connects a component; resolves once the handshake succeeded, with what it receives. */
async function connectComponent(port: number, password = SECRET, domain = DOMAIN) {
  const xmpp: Component = component({ service: `xmpp://127.0.0.1:${port}`, domain, password });
  xmpp.reconnect?.stop?.();
  const received: XmlElement[] = [];
  xmpp.on("stanza", (s: XmlElement) => received.push(s));
  xmpp.on("error", () => {});
  await xmpp.start();
  return { xmpp, received };
}

async function until<T>(get: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("timed out");
}

/** A raw component stream: header, then the handshake; returns all the server said. */
async function rawHandshake(port: number, to: string, secret: string): Promise<string> {
  const socket: Socket = connect(port, "127.0.0.1");
  let text = "";
  socket.on("data", (d) => text += d.toString());
  socket.write(
    `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${to}'>`,
  );
  const id = await until(() =>
    text.match(/ id='([^']+)'/)?.[1] ?? (text.includes("stream:error") ? "" : undefined)
  );
  if (id) {
    socket.write(`<handshake>${createHash("sha1").update(id + secret).digest("hex")}</handshake>`);
  }
  await until(() =>
    (text.includes("<handshake/>") || text.includes("</stream:stream>")) ? true : undefined
  );
  socket.destroy();
  return text;
}

Deno.test("component: a real component library connects, and stanzas flow both ways", async () => {
  const componentPort = await freePort();
  const t = await startTestServer({
    components: { [DOMAIN]: { component_secret: SECRET } },
    component_ports: [componentPort],
  });
  const clients: { stop(): Promise<void> }[] = [];
  try {
    await t.server.users("localhost")!.createUser("alice", "pw");
    const gw = await connectComponent(componentPort);
    clients.push({ stop: () => gw.xmpp.stop().catch(() => {}) });
    const alice = await connectXmpp(t.port, "alice", "pw", "r");
    clients.push(alice);
    alice.xmpp.write("<presence/>");

    // A user's message to an address of the component's domain reaches it.
    alice.xmpp.write(
      `<message to='bot@${DOMAIN}' type='chat' id='m1'><body>hello bot</body></message>`,
    );
    const got = await until(() => gw.received.find((s: XmlElement) => s.attrs.id === "m1"));
    assert.equal(got.attrs.from, alice.jid);
    assert.equal(got.getChildText("body"), "hello bot");

    // The component's message reaches the user, from its domain.
    await gw.xmpp.send(
      xml(
        "message",
        { from: `bot@${DOMAIN}`, to: alice.jid, type: "chat" },
        xml("body", {}, "hi alice"),
      ),
    );
    const back = await alice.waitFor((s) =>
      s.is("message") && s.getChildText("body") === "hi alice"
    );
    assert.equal(back.attrs.from, `bot@${DOMAIN}`);

    // The component answers its own disco (the server passes the query on).
    gw.xmpp.on("stanza", (s: XmlElement) => {
      if (s.is("iq") && s.attrs.type === "get") {
        gw.xmpp.send(
          xml(
            "iq",
            { type: "result", id: s.attrs.id, to: s.attrs.from, from: DOMAIN },
            xml(
              "query",
              { xmlns: "http://jabber.org/protocol/disco#info" },
              xml("identity", { category: "gateway", type: "irc", name: "IRC" }),
            ),
          ),
        );
      }
    });
    alice.xmpp.write(
      `<iq type='get' id='d1' to='${DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
    );
    const info = await alice.waitFor((s) => s.is("iq") && s.attrs.id === "d1");
    assert.equal(info.attrs.type, "result");
    assert.equal(info.getChild("query").getChild("identity").attrs.type, "irc");

    // A stanza from outside its domain is refused, and does not reach the user.
    await gw.xmpp.send(
      xml(
        "message",
        { from: "someone@localhost", to: alice.jid, id: "spoof" },
        xml("body", {}, "spoofed"),
      ),
    );
    const refused = await until(() =>
      gw.received.find((s: XmlElement) => s.attrs.id === "spoof" && s.attrs.type === "error")
    );
    assert.ok(refused.getChild("error").getChild("not-allowed"));
    assert.ok(!alice.received.some((s: XmlElement) => s.getChildText("body") === "spoofed"));

    // A second connection for the same domain is refused; the first stays.
    const second = await rawHandshake(componentPort, DOMAIN, SECRET);
    assert.match(second, /<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);

    // While the component is away, a user's message gets an error.
    await gw.xmpp.stop();
    await new Promise((r) => setTimeout(r, 100));
    alice.xmpp.write(
      `<message to='bot@${DOMAIN}' type='chat' id='m2'><body>anyone?</body></message>`,
    );
    const err = await alice.waitFor((s) => s.is("message") && s.attrs.id === "m2");
    assert.equal(err.attrs.type, "error");
    assert.ok(err.getChild("error").getChild("service-unavailable"));
  } finally {
    for (const c of clients) await c.stop();
    await t.stop();
  }
});

Deno.test("component: a wrong secret gets not-authorized, an unknown domain host-unknown", async () => {
  const componentPort = await freePort();
  const t = await startTestServer({
    components: { [DOMAIN]: { component_secret: SECRET } },
    component_ports: [componentPort],
  });
  try {
    const wrong = await rawHandshake(componentPort, DOMAIN, "guess");
    assert.match(wrong, /<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    assert.doesNotMatch(wrong, /<handshake\/>/);
    const unknown = await rawHandshake(componentPort, "nope.localhost", SECRET);
    assert.match(unknown, /<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    // A real library sees the refusal as an error, not a connection.
    await assert.rejects(connectComponent(componentPort, "guess"));
    // The right secret still works afterwards.
    assert.match(await rawHandshake(componentPort, DOMAIN, SECRET), /<handshake\/>/);
  } finally {
    await t.stop();
  }
});

Deno.test("component: a component without its secret is a clear configuration error", async () => {
  await assert.rejects(
    startTestServer({
      components: { [DOMAIN]: { module: "component" } },
      component_ports: [await freePort()],
    }),
    /component_secret/,
  );
});
