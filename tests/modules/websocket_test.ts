/**
 * XMPP over WebSocket (RFC 7395): a real client library (@xmpp/client's
 * WebSocket transport) logs in and chats with a TCP client; a raw
 * WebSocket checks the framing on the wire (`<open/>`, namespaces declared
 * per frame, no STARTTLS, `<close/>`), and the refusals: no `xmpp`
 * subprotocol (501), binary frames (1003), oversized frames (1009),
 * frames after `<close/>`.
 */
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { connectXmpp, xml } from "../helpers/xmppclient.ts";

const FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
const OPTIONS = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  modules_enabled: ["roster", "saslauth", "tls", "disco", "ping", "websocket"],
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

/** A raw WebSocket to the server, keeping every frame it receives. */
async function rawWs(t: TestServer, protocol: string | string[] = "xmpp") {
  const ws = new WebSocket(`ws://127.0.0.1:${t.httpPort}/xmpp-websocket`, protocol);
  const frames: string[] = [];
  let closed: { code: number; reason: string } | undefined;
  ws.onmessage = (e) => frames.push(String(e.data));
  ws.onclose = (e) => closed = { code: e.code, reason: e.reason };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("WebSocket did not open"));
  });
  const until = async (test: () => boolean, ms = 5000) => {
    for (let i = 0; i < ms / 20 && !test(); i++) await new Promise((r) => setTimeout(r, 20));
    return test();
  };
  return {
    ws,
    frames,
    closed: () => closed,
    send: (s: string) => ws.send(s),
    /** Waits for a frame matching; returns it. */
    frame: async (re: RegExp) => {
      assert.ok(await until(() => frames.some((f) => re.test(f))), `no frame ${re}: ${frames}`);
      return frames.find((f) => re.test(f))!;
    },
    until,
  };
}

Deno.test("websocket: @xmpp/client logs in over WebSocket and chats with a TCP client", async () => {
  await withServer(async (t) => {
    const romeo = await connectXmpp(t.port, "romeo", "pw", "tcp");
    const juliet = await connectXmpp(
      t.port,
      "juliet",
      "pw",
      "browser",
      `ws://127.0.0.1:${t.httpPort}/xmpp-websocket`,
    );
    try {
      // (the resource carries a suffix of the client's: Bind2 derives it)
      assert.match(juliet.jid, /^juliet@localhost\/browser/);
      // Her session is served over the WebSocket (which cannot do STARTTLS), romeo's over TCP.
      assert.equal(t.server.sessions.full.get(juliet.jid)!.conn.canStartTls, false);
      assert.equal(t.server.sessions.full.get(romeo.jid)!.conn.canStartTls, true);
      await juliet.send(xml("message", { to: romeo.jid, type: "chat" }, [
        xml("body", {}, "from the browser"),
      ]));
      const got = await romeo.waitFor((s) => s.is("message"));
      assert.equal(got.getChildText("body"), "from the browser");
      assert.equal(got.attrs.from, juliet.jid);
      await romeo.send(xml("message", { to: juliet.jid, type: "chat" }, [
        xml("body", {}, "to the browser"),
      ]));
      const back = await juliet.waitFor((s) => s.is("message"));
      assert.equal(back.getChildText("body"), "to the browser");
    } finally {
      await juliet.stop();
      await romeo.stop();
    }
  });
});

Deno.test("websocket: RFC 7395 framing on the wire: <open/>, namespaces in every frame, no STARTTLS, <close/>", async () => {
  await withServer(async (t) => {
    const c = await rawWs(t);
    try {
      c.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
      const open = await c.frame(/^<open /);
      assert.match(
        open,
        new RegExp(`^<open xmlns="${FRAMING}" from="localhost" id="[^"]+" version="1.0"`),
      );
      const features = await c.frame(/^<stream:features/);
      assert.match(
        features,
        /^<stream:features xmlns:stream="http:\/\/etherx.jabber.org\/streams"/,
      );
      assert.doesNotMatch(features, /starttls/); // (nothing to upgrade: TLS is the WebSocket's)
      assert.match(features, /<mechanism>PLAIN<\/mechanism>/);
      // Authenticate, restart with a new <open/>, bind; a stanza frame declares jabber:client.
      c.send(
        `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
          btoa("\0juliet\0pw")
        }</auth>`,
      );
      await c.frame(/^<success /);
      c.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
      await c.until(() => c.frames.filter((f) => f.startsWith("<stream:features")).length === 2);
      c.send(
        "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>ws</resource></bind></iq>",
      );
      const bound = await c.frame(/id="b1"/);
      assert.match(bound, /^<iq xmlns="jabber:client" /);
      assert.match(bound, /<jid>juliet@localhost\/ws<\/jid>/);
      c.send(
        "<iq type='get' id='p1' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>",
      );
      await c.frame(/id="p1"/);
      // <close/> ends the stream: the server answers <close/> and closes the WebSocket.
      c.send(`<close xmlns='${FRAMING}'/>`);
      await c.frame(/^<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"\/>$/);
      assert.ok(await c.until(() => c.closed() !== undefined));
    } finally {
      c.ws.close();
    }
  });
});

Deno.test("websocket: refusals — no xmpp subprotocol, binary frames, oversized frames; plain GET says what it is", async () => {
  await withServer(async (t) => {
    const url = `http://127.0.0.1:${t.httpPort}/xmpp-websocket`;
    const get = await fetch(url);
    assert.equal(get.status, 200);
    assert.match(await get.text(), /WebSocket endpoint/);
    // The subprotocol is required.
    const noXmpp = await fetch(url, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
        "sec-websocket-protocol": "chat",
      },
    });
    assert.equal(noXmpp.status, 501);
    await noXmpp.body?.cancel();
    // Binary frames: 1003.
    const b = await rawWs(t);
    b.ws.send(new Uint8Array([1, 2, 3]));
    assert.ok(await b.until(() => b.closed() !== undefined));
    assert.equal(b.closed()!.code, 1003);
    // A frame over websocket_max_frame_size: 1009.
    const big = await rawWs(t);
    big.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
    await big.frame(/^<stream:features/);
    big.send(`<message xmlns='jabber:client'><body>${"x".repeat(5000)}</body></message>`);
    assert.ok(await big.until(() => big.closed() !== undefined));
    assert.equal(big.closed()!.code, 1009);
  }, { websocket_max_frame_size: 4096 });
});

Deno.test("websocket: consider_websocket_secure lets a proxy's TLS count; otherwise PLAIN waits for encryption", async () => {
  // Encryption required (the default), over plain HTTP: no mechanism is offered.
  await withServer(async (t) => {
    const c = await rawWs(t);
    c.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
    const features = await c.frame(/^<stream:features/);
    assert.doesNotMatch(features, /<mechanism>PLAIN</);
    c.ws.close();
  }, { c2s_require_encryption: true, allow_unencrypted_plain_auth: false });
  // The same with consider_websocket_secure: the session counts as encrypted.
  await withServer(async (t) => {
    const c = await rawWs(t);
    c.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
    const features = await c.frame(/^<stream:features/);
    assert.match(features, /<mechanism>PLAIN<\/mechanism>/);
    c.ws.close();
  }, {
    c2s_require_encryption: true,
    allow_unencrypted_plain_auth: false,
    consider_websocket_secure: true,
  });
});

Deno.test("host_meta: XEP-0156 host-meta and host-meta.json announce the WebSocket URL, to any origin", async () => {
  await withServer(async (t) => {
    const base = `http://127.0.0.1:${t.httpPort}/.well-known`;
    const xrd = await fetch(`${base}/host-meta`, { headers: { origin: "https://web.example" } });
    assert.equal(xrd.headers.get("content-type"), "application/xrd+xml");
    assert.equal(xrd.headers.get("access-control-allow-origin"), "*");
    assert.match(
      await xrd.text(),
      new RegExp(
        `<Link rel='urn:xmpp:alt-connections:websocket' href='ws://127.0.0.1:${t.httpPort}/xmpp-websocket'/>`,
      ),
    );
    const jrd = await (await fetch(`${base}/host-meta.json`)).json();
    assert.deepEqual(jrd, {
      links: [{
        rel: "urn:xmpp:alt-connections:websocket",
        href: `ws://127.0.0.1:${t.httpPort}/xmpp-websocket`,
      }],
    });
  }, { modules_enabled: [...OPTIONS.modules_enabled, "host_meta"] });
  // Behind a proxy: the URL clients use, from http_external_url.
  await withServer(async (t) => {
    const jrd = await (await fetch(`http://127.0.0.1:${t.httpPort}/.well-known/host-meta.json`))
      .json();
    assert.equal(jrd.links[0].href, "wss://chat.example.com/xmpp-websocket");
  }, {
    modules_enabled: [...OPTIONS.modules_enabled, "host_meta"],
    http_external_url: "https://chat.example.com/",
  });
});

Deno.test("websocket: a frame that is not XML gets not-well-formed, then <close/>, then the WebSocket closes", async () => {
  await withServer(async (t) => {
    const c = await rawWs(t);
    c.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
    await c.frame(/^<stream:features/);
    c.send("<message><body>unclosed</message>");
    const error = await c.frame(/^<stream:error/);
    assert.match(error, /^<stream:error xmlns:stream="http:\/\/etherx.jabber.org\/streams">/);
    assert.match(error, /<not-well-formed xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/);
    await c.frame(/^<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"\/>$/);
    assert.ok(await c.until(() => c.closed() !== undefined));
  });
});

/** A raw WebSocket logged in as juliet (SASL PLAIN, the restart), ready to bind or resume. */
async function rawLogin(t: TestServer) {
  const c = await rawWs(t);
  c.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
  await c.frame(/^<stream:features/);
  c.send(
    `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
      btoa("\0juliet\0pw")
    }</auth>`,
  );
  await c.frame(/^<success /);
  c.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
  await c.until(() => c.frames.filter((f) => f.startsWith("<stream:features")).length === 2);
  return c;
}

Deno.test("websocket: stream management — acks, and a dropped WebSocket resumed with what it missed", async () => {
  await withServer(async (t) => {
    const SM = "urn:xmpp:sm:3";
    const romeo = await connectXmpp(t.port, "romeo", "pw", "tcp");
    const first = await rawLogin(t);
    let second: Awaited<ReturnType<typeof rawLogin>> | undefined;
    try {
      assert.match(first.frames.at(-1)!, new RegExp(`<sm xmlns="${SM}"`), "SM is offered");
      first.send(
        "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>ws</resource></bind></iq>",
      );
      await first.frame(/id="b1"/);
      first.send(`<enable xmlns='${SM}' resume='true'/>`);
      const enabled = await first.frame(/^<enabled /);
      const id = /id="([^"]+)"/.exec(enabled)![1];
      first.send(
        "<iq type='get' id='p1' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>",
      );
      first.send(`<r xmlns='${SM}'/>`);
      assert.match(await first.frame(/^<a /), /h="1"/, "the ping (after enable) was counted");
      // The WebSocket drops without <close/> (a phone losing its network).
      first.ws.close();
      await first.until(() => first.closed() !== undefined);
      await romeo.send(
        xml("message", { to: "juliet@localhost/ws", type: "chat" }, [xml("body", {}, "missed")]),
      );
      await new Promise((r) => setTimeout(r, 200));
      second = await rawLogin(t);
      second.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
      const resumed = await second.frame(/^<resumed /);
      assert.match(resumed, new RegExp(`previd="${id}"`));
      const again = await second.frame(/<body>missed<\/body>/);
      assert.match(again, /^<message xmlns="jabber:client"/);
    } finally {
      first.ws.close();
      second?.ws.close();
      await romeo.stop();
    }
  }, { modules_enabled: [...OPTIONS.modules_enabled, "smacks"] });
});
