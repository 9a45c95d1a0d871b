/**
 * XMPP over BOSH (XEP-0124/0206) on the wire: a BOSH client made by hand
 * (every `<body/>` checked) logs in and chats with a TCP client
 * (@xmpp/client); request ids (lost answers sent again, requests that
 * overtake each other, ids out of the window), terminate, inactivity,
 * pause, and the refusals (unknown sid, bad XML, unknown host, oversize).
 */
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { connectXmpp, type TestXmpp, xml } from "../helpers/xmppclient.ts";
import { BOSH_NS, BoshClient } from "../helpers/bosh.ts";

const OPTIONS = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  modules_enabled: ["roster", "saslauth", "tls", "disco", "ping", "presence", "bosh"],
};

async function withServer(fn: (t: TestServer) => Promise<void>, extra = {}) {
  const t = await startTestServer({ ...OPTIONS, ...extra });
  try {
    for (const u of ["juliet", "romeo"]) await t.server.users("localhost")!.createUser(u, "pw");
    await fn(t);
  } finally {
    await t.stop();
  }
}

const client = (t: TestServer) => new BoshClient(`http://127.0.0.1:${t.httpPort}/http-bind`);

/** Romeo over TCP, collecting the message bodies he gets. */
async function romeo(t: TestServer): Promise<{ xmpp: TestXmpp; got: string[] }> {
  const xmpp = await connectXmpp(t.port, "romeo", "pw", "tcp");
  await xmpp.send(xml("presence"));
  const got: string[] = [];
  xmpp.xmpp.on("stanza", (s: { is(n: string): boolean; getChildText(n: string): string }) => {
    if (s.is("message")) got.push(s.getChildText("body"));
  });
  return { xmpp, got };
}

async function until(test: () => boolean, ms = 5000): Promise<boolean> {
  for (let i = 0; i < ms / 20 && !test(); i++) await new Promise((r) => setTimeout(r, 20));
  return test();
}

const attr = (text: string, name: string) =>
  new RegExp(`\\s${name}=['"]([^'"]*)['"]`).exec(text)?.[1];

Deno.test("bosh: a session is created with its terms and the stream's features", async () => {
  await withServer(async (t) => {
    const c = client(t);
    const first = await c.create("localhost", 30, 5);
    assert.equal(attr(first, "xmlns"), BOSH_NS);
    assert.equal(attr(first, "wait"), "30");
    assert.equal(attr(first, "hold"), "1", "hold is capped at bosh_max_requests - 1");
    assert.equal(attr(first, "requests"), "2");
    assert.equal(attr(first, "inactivity"), "60");
    assert.equal(attr(first, "polling"), "5");
    assert.equal(attr(first, "from"), "localhost");
    assert.equal(attr(first, "secure"), "false");
    assert.equal(attr(first, "xmpp:version"), "1.0");
    assert.ok(attr(first, "authid"), "authid is the stream id");
    assert.match(first, /<stream:features xmlns:stream=/);
    assert.match(first, /<mechanism>PLAIN<\/mechanism>/);
    assert.doesNotMatch(first, /starttls/, "STARTTLS is never offered over BOSH");
  });
});

Deno.test("bosh: logs in (SASL, restart, bind) and chats with a TCP client", async () => {
  await withServer(async (t) => {
    const r = await romeo(t);
    try {
      const c = client(t);
      await c.create("localhost");
      await c.login("juliet", "pw");
      assert.match(c.jid, /^juliet@localhost\/bosh/);
      await c.send(
        "<message xmlns='jabber:client' to='romeo@localhost' type='chat'><body>from bosh</body></message>",
      );
      assert.ok(await until(() => r.got.includes("from bosh")), "romeo gets juliet's message");
      // Romeo answers while juliet's client holds a request: it comes in that answer.
      const held = c.send();
      await r.xmpp.send(
        xml("message", { to: c.jid, type: "chat" }, xml("body", {}, "from tcp")),
      );
      const text = await held;
      assert.match(text, /<message xmlns="jabber:client"[^>]*from="romeo@localhost/);
      assert.match(text, /<body>from tcp<\/body>/);
    } finally {
      await r.xmpp.stop();
    }
  });
});

Deno.test("bosh: a lost answer is sent again for its rid; ids out of order wait their turn", async () => {
  await withServer(async (t) => {
    const r = await romeo(t);
    try {
      const c = client(t);
      await c.create("localhost");
      await c.login("juliet", "pw");
      const rid = c.rid;
      const ping =
        "<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>";
      const answer = await c.send(ping, {}, rid);
      assert.match(answer, /id="p1"/);
      // The client did not get it: the same rid again gets the same answer, not a new ping.
      assert.equal(await c.send(ping, {}, rid), answer);
      // rid+2 comes before rid+1: its message goes after rid+1's.
      const msg = (body: string) =>
        `<message xmlns='jabber:client' to='romeo@localhost' type='chat'><body>${body}</body></message>`;
      const second = c.send(msg("two"), {}, rid + 2);
      await new Promise((ok) => setTimeout(ok, 200));
      assert.deepEqual(r.got, [], "rid+2 waits for rid+1");
      const first = c.send(msg("one"), {}, rid + 1);
      assert.ok(await until(() => r.got.length === 2));
      assert.deepEqual(r.got, ["one", "two"]);
      c.rid = rid + 3;
      await Promise.all([first, c.send(), second]);
    } finally {
      await r.xmpp.stop();
    }
  });
});

Deno.test("bosh: a rid out of the window ends the session; an unknown sid is item-not-found", async () => {
  await withServer(async (t) => {
    const c = client(t);
    await c.create("localhost");
    const ahead = await c.send("", {}, c.rid + 5);
    assert.match(ahead, /type=['"]terminate['"]/);
    assert.equal(attr(ahead, "condition"), "item-not-found");
    const after = await c.post(
      `<body xmlns='${BOSH_NS}' rid='${c.rid}' sid='${c.sid}'/>`,
    );
    assert.equal(after.status, 200, "the session is gone (said with 200, as Prosody)");
    assert.equal(attr(after.text, "condition"), "item-not-found");
    const unknown = await c.post(`<body xmlns='${BOSH_NS}' rid='1' sid='no-such-sid'/>`);
    assert.equal(unknown.status, 200);
    assert.equal(attr(unknown.text, "condition"), "item-not-found");
  });
});

Deno.test("bosh: bad requests get bad-request, an unknown host host-unknown, oversize 413", async () => {
  await withServer(async (t) => {
    const c = client(t);
    const bad = await c.post("<body xmlns='http://jabber.org/protocol/httpbind' rid='1'>");
    assert.equal(bad.status, 400);
    assert.equal(attr(bad.text, "condition"), "bad-request");
    const notBody = await c.post("<iq xmlns='jabber:client' type='get' id='1'/>");
    assert.equal(notBody.status, 400);
    const noRid = await c.post(`<body xmlns='${BOSH_NS}' to='localhost' wait='5'/>`);
    assert.equal(noRid.status, 400);
    for (const rid of ["", "-1", "1e3", "12abc"]) {
      const r = await c.post(`<body xmlns='${BOSH_NS}' rid='${rid}' to='localhost' wait='5'/>`);
      assert.equal(r.status, 400, `rid '${rid}'`);
      assert.equal(attr(r.text, "condition"), "bad-request");
    }
    const noWait = await c.post(`<body xmlns='${BOSH_NS}' rid='1' to='localhost' hold='1'/>`);
    assert.equal(attr(noWait.text, "condition"), "bad-request", "a session needs its wait");
    const host = await c.post(
      `<body xmlns='${BOSH_NS}' rid='1' to='elsewhere.example' wait='5' hold='1'/>`,
    );
    assert.equal(attr(host.text, "condition"), "host-unknown");
    // A chunked body announces no length: the limit is counted as it comes.
    const big = new ReadableStream<Uint8Array>({
      start(ctl) {
        const chunk = new TextEncoder().encode("<a/>".repeat(16 * 1024));
        ctl.enqueue(new TextEncoder().encode(`<body xmlns='${BOSH_NS}' rid='1'>`));
        for (let i = 0; i < 8; i++) ctl.enqueue(chunk);
        ctl.enqueue(new TextEncoder().encode("</body>"));
        ctl.close();
      },
    });
    const r = await fetch(c.url, { method: "POST", body: big });
    assert.equal(r.status, 413);
    await r.body?.cancel();
  });
});

Deno.test("bosh: terminate ends the session; its contacts see it leave", async () => {
  await withServer(async (t) => {
    const r = await romeo(t);
    try {
      const c = client(t);
      await c.create("localhost");
      await c.login("juliet", "pw");
      // Directed presence: romeo is told when juliet's session ends.
      await c.send(`<presence xmlns="jabber:client" to="${r.xmpp.jid}"/>`);
      await r.xmpp.waitFor((s) => s.is("presence") && s.attrs.from === c.jid);
      const end = await c.send("", { type: "terminate" });
      assert.match(end, /type=['"]terminate['"]/);
      const gone = await r.xmpp.waitFor((s) => s.is("presence") && s.attrs.from === c.jid);
      assert.equal(gone.attrs.type, "unavailable");
      assert.ok(await until(() => t.server.sessions.fullSession(c.jid) === undefined));
      const after = await c.post(`<body xmlns='${BOSH_NS}' rid='${c.rid}' sid='${c.sid}'/>`);
      assert.equal(attr(after.text, "condition"), "item-not-found");
    } finally {
      await r.xmpp.stop();
    }
  });
});

Deno.test("bosh: a client gone for bosh_max_inactivity loses its session", async () => {
  await withServer(async (t) => {
    const c = client(t);
    await c.create("localhost");
    await c.login("juliet", "pw");
    assert.ok(t.server.sessions.fullSession(c.jid), "bound");
    assert.ok(await until(() => t.server.sessions.fullSession(c.jid) === undefined, 4000));
    const after = await c.post(`<body xmlns='${BOSH_NS}' rid='${c.rid}' sid='${c.sid}'/>`);
    assert.equal(after.status, 200);
    assert.equal(attr(after.text, "condition"), "item-not-found");
  }, { bosh_max_inactivity: 1 });
});

Deno.test("bosh: a stream error ends the session with remote-stream-error and the error", async () => {
  await withServer(async (t) => {
    const c = client(t);
    await c.create("localhost");
    // A stanza before authentication: c2s ends the stream with not-authorized.
    const end = await c.send(
      "<message xmlns='jabber:client' to='romeo@localhost'><body>hi</body></message>",
    );
    assert.equal(attr(end, "type"), "terminate");
    assert.equal(attr(end, "condition"), "remote-stream-error");
    assert.match(end, /<stream:error xmlns:stream="http:\/\/etherx.jabber.org\/streams">/);
    assert.match(end, /<not-authorized xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']/);
  });
});

Deno.test("bosh: pause keeps the session past its inactivity; polling too often is refused", async () => {
  await withServer(async (t) => {
    const c = client(t);
    await c.create("localhost");
    await c.login("juliet", "pw");
    const paused = await c.send("", { pause: "3" });
    assert.doesNotMatch(paused, /terminate/);
    await new Promise((ok) => setTimeout(ok, 2000)); // past bosh_max_inactivity (1 s)
    assert.ok(t.server.sessions.fullSession(c.jid), "still there while paused");
    const ping = await c.send(
      "<iq xmlns='jabber:client' type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert.match(ping, /id="p2"/);

    // A polling session (hold 0): empty requests less than `polling` seconds apart.
    const p = client(t);
    const first = await p.create("localhost", 3, 0);
    assert.equal(attr(first, "hold"), "0");
    assert.equal(attr(first, "requests"), "1");
    await p.send();
    const second = await p.send();
    assert.equal(attr(second, "condition"), "policy-violation");
  }, { bosh_max_inactivity: 1 });
});

Deno.test("bosh: host-meta announces the BOSH URL next to the WebSocket one", async () => {
  await withServer(async (t) => {
    const jrd = await (await fetch(`http://127.0.0.1:${t.httpPort}/.well-known/host-meta.json`))
      .json();
    assert.deepEqual(jrd.links, [
      {
        rel: "urn:xmpp:alt-connections:websocket",
        href: `ws://127.0.0.1:${t.httpPort}/xmpp-websocket`,
      },
      { rel: "urn:xmpp:alt-connections:xbosh", href: `http://127.0.0.1:${t.httpPort}/http-bind` },
    ]);
    const info = await fetch(`http://127.0.0.1:${t.httpPort}/http-bind`);
    assert.match(await info.text(), /BOSH endpoint/);
  }, { modules_enabled: [...OPTIONS.modules_enabled, "websocket", "host_meta"] });
});
