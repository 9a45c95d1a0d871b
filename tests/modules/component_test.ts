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
import { type Config, validateConfig } from "../../core/config.ts";
import { ModuleManager } from "../../core/modulemanager.ts";

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
    assert.ok(err.getChild("error").getChild("remote-server-timeout"));
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

/** A raw component connection, past the handshake: write XML, read all the server said. */
async function rawComponent(port: number, secret = SECRET, domain = DOMAIN) {
  const socket: Socket = connect(port, "127.0.0.1");
  let text = "";
  let closed = false;
  socket.on("data", (d) => text += d.toString());
  socket.on("close", () => closed = true);
  socket.on("error", () => {});
  socket.write(
    `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`,
  );
  const id = await until(() => text.match(/ id='([^']+)'/)?.[1]);
  return {
    id,
    token: (s = secret) => createHash("sha1").update(id + s).digest("hex"),
    write: (xml: string) => socket.write(xml),
    text: () => text,
    closed: () => closed,
    wait: (re: RegExp, ms?: number) => until(() => re.test(text) ? true : undefined, ms),
    destroy: () => socket.destroy(),
  };
}

async function withServer(
  fn: (t: Awaited<ReturnType<typeof startTestServer>>, componentPort: number) => Promise<void>,
) {
  const componentPort = await freePort();
  const t = await startTestServer({
    components: { [DOMAIN]: { component_secret: SECRET } },
    component_ports: [componentPort],
  });
  try {
    await t.server.users("localhost")!.createUser("alice", "pw");
    await fn(t, componentPort);
  } finally {
    await t.stop();
  }
}

Deno.test("component: a from with its domain only in the resource is refused", async () => {
  await withServer(async (t, componentPort) => {
    const alice = await connectXmpp(t.port, "alice", "pw", "r");
    const gw = await rawComponent(componentPort);
    try {
      gw.write(`<handshake>${gw.token()}</handshake>`);
      await gw.wait(/<handshake\/>/);
      // "localhost/x@gw.localhost" is the server's own domain with a resource.
      gw.write(
        `<message from='localhost/x@${DOMAIN}' to='${alice.jid}' id='spoof2'><body>from the server</body></message>`,
      );
      await gw.wait(/id=["']spoof2["']/);
      assert.match(gw.text(), /type=["']error["']/);
      assert.match(gw.text(), /<not-allowed /);
      gw.write(
        `<message from='bot@${DOMAIN}' to='${alice.jid}' id='ok'><body>real</body></message>`,
      );
      await alice.waitFor((s) => s.is("message") && s.attrs.id === "ok");
      assert.ok(!alice.received.some((s: XmlElement) => s.attrs.id === "spoof2"));
    } finally {
      gw.destroy();
      await alice.stop();
    }
  });
});

Deno.test("component: addresses are normalised, a stanza without to gets bad-request", async () => {
  await withServer(async (t, componentPort) => {
    const alice = await connectXmpp(t.port, "alice", "pw", "r");
    const gw = await rawComponent(componentPort);
    try {
      gw.write(`<handshake>${gw.token()}</handshake>`);
      await gw.wait(/<handshake\/>/);
      gw.write(
        `<message from='Bot@GW.localhost' to='${
          alice.jid.replace("alice@localhost", "ALICE@LocalHost")
        }' id='caps'><body>hi</body></message>`,
      );
      const got = await alice.waitFor((s) => s.is("message") && s.attrs.id === "caps");
      assert.equal(got.attrs.from, `bot@${DOMAIN}`);
      gw.write(`<iq from='${DOMAIN}' type='get' id='noto'><ping xmlns='urn:xmpp:ping'/></iq>`);
      await gw.wait(/id=["']noto["']/);
      assert.match(gw.text(), /<bad-request /);
    } finally {
      gw.destroy();
      await alice.stop();
    }
  });
});

Deno.test("component: guesses after a failed handshake in the same read are not tried", async () => {
  await withServer(async (t, componentPort) => {
    const alice = await connectXmpp(t.port, "alice", "pw", "r");
    try {
      const gw = await rawComponent(componentPort);
      // One read: a wrong token, the right one, and a stanza that only an accepted one may send.
      gw.write(
        `<handshake>${gw.token("guess")}</handshake><handshake>${gw.token()}</handshake>` +
          `<message from='bot@${DOMAIN}' to='${alice.jid}' id='sneak'><body>in</body></message>`,
      );
      await until(() => gw.closed() ? true : undefined);
      assert.match(gw.text(), /<not-authorized /);
      alice.xmpp.write(`<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`);
      await alice.waitFor((s) => s.attrs.id === "sync");
      assert.ok(!alice.received.some((s: XmlElement) => s.attrs.id === "sneak"));
      // Nothing took the domain: the component connects.
      assert.match(await rawHandshake(componentPort, DOMAIN, SECRET), /<handshake\/>/);
    } finally {
      await alice.stop();
    }
  });
});

Deno.test("component: while it is away, errors are Prosody's remote-server-timeout", async () => {
  await withServer(async (t) => {
    const alice = await connectXmpp(t.port, "alice", "pw", "r");
    try {
      alice.xmpp.write(`<message to='bot@${DOMAIN}' id='away'><body>anyone?</body></message>`);
      const err = await alice.waitFor((s) => s.is("message") && s.attrs.id === "away");
      assert.equal(err.attrs.type, "error");
      const e = err.getChild("error");
      assert.equal(e.attrs.type, "wait");
      assert.equal(e.attrs.by, DOMAIN);
      assert.ok(e.getChild("remote-server-timeout"));
      assert.ok(e.getChild("not-connected", "xmpp:prosody.im/protocol/component"));
    } finally {
      await alice.stop();
    }
  });
});

Deno.test("component: a configuration reload keeps it connected; removing it disconnects it", async () => {
  await withServer(async (t, componentPort) => {
    const alice = await connectXmpp(t.port, "alice", "pw", "r");
    const gw = await rawComponent(componentPort);
    try {
      gw.write(`<handshake>${gw.token()}</handshake>`);
      await gw.wait(/<handshake\/>/);
      const raw = t.server.config.raw;
      const reload = (components: Config["components"]) =>
        t.server.reload(
          validateConfig({ ...raw, components }, {
            configDir: t.dataDir,
            builtinModulesDir: ModuleManager.builtinDir,
          }),
        );
      await reload({ [DOMAIN]: { component_secret: SECRET } });
      alice.xmpp.write(
        `<message to='bot@${DOMAIN}' id='after'><body>still there?</body></message>`,
      );
      await gw.wait(/id=["']after["']/);
      // A second connection is still a conflict: the first one serves the domain.
      assert.match(await rawHandshake(componentPort, DOMAIN, SECRET), /<conflict /);

      // The domain goes from the configuration: its component goes too.
      await reload({});
      await gw.wait(/<\/stream:stream>/);
      assert.match(gw.text(), /<host-gone /);
    } finally {
      gw.destroy();
      await alice.stop();
    }
  });
});
