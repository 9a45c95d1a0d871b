/**
 * Hostile or broken remote servers, played by raw sockets: stanzas before
 * authentication, dialback for a domain the stream was not opened for,
 * junk elements, a peer that never finishes TLS (either way), and a peer
 * that stops reading while we send to it. Each gets its stream error or
 * its timeout, memory stays bounded, and what was not sent comes back to
 * its sender.
 */
import assert from "node:assert/strict";
import { connect, createServer, type Server as NetServer, type Socket } from "node:net";
import { freePort, startTestServer, type TestServer } from "../helpers/server.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { HEADER, Peer, sleep } from "../helpers/s2s_peer.ts";

const BASE = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  modules_enabled: ["roster", "saslauth", "ping", "s2s"],
  virtual_hosts: { "a.test": {} },
};

/** Server a.test, with `c.test` published (SRV) at a port a fake server of the test listens on. */
async function withServer(
  options: Record<string, unknown>,
  fn: (t: TestServer, s2sPort: number, fakePort: number) => Promise<void>,
) {
  const [s2sPort, fakePort] = [await freePort(), await freePort()];
  const dns = await startDnsServer({
    "_xmpp-server._tcp.c.test": [{ srv: [0, 0, fakePort, "c.test"] }],
    "c.test": [{ a: "127.0.0.1" }],
  });
  const t = await startTestServer({
    ...BASE,
    s2s_ports: [s2sPort],
    s2s_dns_server: `127.0.0.1:${dns.nameServer.port}`,
    ...options,
  });
  try {
    await t.server.users("a.test")!.createUser("alice", "pw");
    await fn(t, s2sPort, fakePort);
  } finally {
    await t.stop();
    dns.close();
  }
}

/** A fake remote server: `onStream` is given each connection and what it says. */
function fakeServer(
  port: number,
  onData: (socket: Socket, text: string, n: number) => void,
): Promise<NetServer> {
  let n = 0;
  const srv = createServer((socket) => {
    const k = ++n;
    let text = "";
    socket.on("error", () => {});
    socket.on("data", (d) => onData(socket, text += d.toString(), k));
  });
  return new Promise((resolve) => srv.listen(port, "127.0.0.1", () => resolve(srv)));
}

async function alice(t: TestServer): Promise<RawClient> {
  const c = await RawClient.connect(t.port);
  await c.login("alice", "pw", "r", "a.test");
  c.send("<presence/>");
  return c;
}

Deno.test("s2s attacks: unauthenticated stanzas, dialback for another domain, junk — each its stream error", async () => {
  await withServer({ s2s_require_encryption: false }, async (_t, port) => {
    const ended = /<\/stream:stream>/;
    // A stanza before any authentication.
    const p1 = await Peer.open(port, "evil.test", "a.test");
    p1.send("<message from='x@evil.test' to='alice@a.test'><body>hi</body></message>");
    assert.ok(await p1.until(ended));
    assert.match(p1.text, /<not-authorized xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]\/>/);
    p1.close();
    // Dialback for a domain this stream was not opened for.
    const p2 = await Peer.open(port, "evil.test", "a.test");
    p2.send("<db:result from='evil.test' to='other.test'>key</db:result>");
    assert.ok(await p2.until(ended));
    assert.match(p2.text, /<host-unknown /);
    p2.close();
    // Dialback claiming our own domain.
    const p3 = await Peer.open(port, "a.test", "a.test");
    p3.send("<db:result from='a.test' to='a.test'>key</db:result>");
    assert.ok(await p3.until(ended));
    assert.match(p3.text, /<invalid-from /);
    p3.close();
    // An element that is no stanza.
    const p4 = await Peer.open(port, "evil.test", "a.test");
    p4.send("<junk/>");
    assert.ok(await p4.until(ended));
    assert.match(p4.text, /<unsupported-stanza-type /);
    p4.close();
  });
});

Deno.test("s2s attacks: a peer that never finishes TLS, or never speaks, is closed at s2s_connect_timeout", async () => {
  await withServer({ s2s_connect_timeout: 1 }, async (_t, port) => {
    const p = await Peer.open(port, "slow.test", "a.test");
    assert.match(p.text, /<starttls xmlns=['"]urn:ietf:params:xml:ns:xmpp-tls['"]><required\/>/);
    p.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert.ok(await p.until(/<proceed /));
    // ... and no TLS handshake: the socket is closed by the server.
    const closed = new Promise<void>((r) => p.socket.once("close", () => r()));
    const silent = new Peer(connect(port, "127.0.0.1"));
    const silentClosed = new Promise<void>((r) => silent.socket.once("close", () => r()));
    const timeout = sleep(8000).then(() => "still open");
    assert.notEqual(await Promise.race([closed, timeout]), "still open");
    assert.notEqual(await Promise.race([silentClosed, timeout]), "still open");
    assert.match(silent.text, /<connection-timeout /);
  });
});

Deno.test("s2s attacks: a remote server that never finishes TLS: the message bounces remote-server-timeout", async () => {
  await withServer({ s2s_connect_timeout: 1 }, async (t, _port, fakePort) => {
    // Answers the header and <starttls/>, then sits on the TLS handshake.
    const proceeded = new Set<Socket>();
    const srv = await fakeServer(fakePort, (socket, text) => {
      if (text.includes("<starttls")) {
        if (!proceeded.has(socket)) {
          socket.write("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        }
        proceeded.add(socket);
      } else {
        socket.write(
          "<?xml version='1.0'?>" + HEADER("c.test", "a.test").replace(">", " id='s1'>") +
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>" +
            "</starttls></stream:features>",
        );
      }
    });
    const c = await alice(t);
    try {
      c.send("<message to='carol@c.test' type='chat' id='t1'><body>hello?</body></message>");
      const err = await c.waitFor(/<message [^>]*id="t1"[^>]*>[^]*?<\/message>/, 8000);
      assert.match(err[0], /type="error"/);
      assert.match(err[0], /<remote-server-timeout /);
    } finally {
      c.close();
      srv.close();
    }
  });
});

Deno.test("s2s attacks: a remote server that stops reading: its stream is closed, what was not sent comes back", async () => {
  await withServer(
    {
      s2s_require_encryption: false,
      send_timeout: 1,
      max_send_buffer_size: 64 << 20, // (alice's bounces come in one burst)
      limits: false,
    },
    async (t, _port, fakePort) => {
      let connections = 0;
      let firstMessage!: () => void;
      const gotFirst = new Promise<void>((r) => firstMessage = r);
      // The first connection authenticates (dialback "valid"), takes one message, then reads
      // nothing more; later ones are refused (so what is sent again bounces).
      const srv = await fakeServer(fakePort, (socket, text, n) => {
        connections = Math.max(connections, n);
        if (n > 1) return void socket.destroy();
        if (text.includes("<message")) {
          socket.pause();
          firstMessage();
        } else if (text.includes("<db:result")) {
          socket.write("<db:result from='c.test' to='a.test' type='valid'/>");
        } else {
          socket.write(
            "<?xml version='1.0'?>" + HEADER("c.test", "a.test").replace(">", " id='s1'>") +
              "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>",
          );
        }
      });
      const c = await alice(t);
      try {
        c.send("<message to='carol@c.test' type='chat' id='first'><body>hi</body></message>");
        await gotFirst;
        // Far more than the kernel's buffers hold: 16 MB.
        const body = "x".repeat(64 * 1024);
        for (let i = 0; i < 256; i++) {
          c.send(
            `<message to='carol@c.test' type='chat' id='s${i}'><body>${body}</body></message>`,
          );
        }
        // The stuck stream is dropped; stanzas it held come back to alice as errors.
        const err = await c.waitFor(/<message [^>]*type="error"[^>]*>/, 20_000);
        assert.match(err[0], /id="s\d+"/);
        const s2s = t.server.modules.get("*", "s2s")!.exports.connections as () => {
          outgoing: unknown[];
        };
        for (let i = 0; i < 100 && s2s().outgoing.length > 0; i++) await sleep(100);
        assert.equal(s2s().outgoing.length, 0);
        assert.ok(connections >= 2, "the unsent stanzas were tried once more");
        // The server is still at alice's service.
        c.clear();
        c.send("<iq type='get' id='p1' to='a.test'><ping xmlns='urn:xmpp:ping'/></iq>");
        await c.waitFor(/<iq [^>]*id="p1"[^>]*type="result"|<iq [^>]*type="result"[^>]*id="p1"/);
      } finally {
        c.close();
        srv.close();
      }
    },
  );
});
