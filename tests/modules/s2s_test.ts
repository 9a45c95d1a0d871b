/**
 * Server-to-server between two Cadence servers on loopback, each with its
 * own domain (found through a loopback DNS server speaking the real
 * protocol): dialback authenticates the routes both ways, messages and
 * iqs cross, stanzas wait while a route is set up, a domain with no server
 * bounces `remote-server-not-found`, and a server that is not who it says
 * it is cannot get a stanza in.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { freePort, startTestServer, type TestServer } from "../helpers/server.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { accepts } from "../helpers/net.ts";
import { validateConfig } from "../../core/config.ts";
import { ModuleManager } from "../../core/modulemanager.ts";

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  s2s_require_encryption: false,
};

let dnsAsked: () => string[] = () => [];

async function twoServers(
  fn: (
    a: TestServer,
    b: TestServer,
    login: (who: string, host: string, t: TestServer) => Promise<RawClient>,
  ) => Promise<void>,
  extra: Record<string, unknown> = {},
) {
  const [pa, pb] = [await freePort(), await freePort()];
  const dns: DnsServer = await startDnsServer({
    "_xmpp-server._tcp.a.test": [{ srv: [0, 0, pa, "a.test"] }],
    "_xmpp-server._tcp.b.test": [{ srv: [0, 0, pb, "b.test"] }],
    "a.test": [{ a: "127.0.0.1" }],
    "b.test": [{ a: "127.0.0.1" }],
  });
  dnsAsked = () => dns.asked;
  const common = { ...PLAIN, s2s_dns_server: `127.0.0.1:${dns.nameServer.port}`, ...extra };
  const modules = { modules_enabled: ["roster", "saslauth", "disco", "ping", "version", "s2s"] };
  const a = await startTestServer({
    ...common,
    ...modules,
    virtual_hosts: { "a.test": {} },
    s2s_ports: [pa],
  });
  const b = await startTestServer({
    ...common,
    ...modules,
    virtual_hosts: { "b.test": {} },
    s2s_ports: [pb],
  });
  const clients: RawClient[] = [];
  try {
    await a.server.users("a.test")!.createUser("alice", "pw");
    await b.server.users("b.test")!.createUser("bob", "pw");
    await fn(a, b, async (who, host, t) => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(who, "pw", "r", host);
      c.send("<presence/>");
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await a.stop();
    await b.stop();
    dns.close();
  }
}

Deno.test("s2s: two servers authenticate each other by dialback; messages and iqs cross both ways", async () => {
  await twoServers(async (a, b, login) => {
    const alice = await login("alice", "a.test", a);
    const bob = await login("bob", "b.test", b);
    // The first message waits while the route is set up, then arrives.
    alice.send("<message to='bob@b.test' type='chat' id='m1'><body>hello from a</body></message>");
    await bob.waitFor(
      /<message [^>]*from="alice@a.test\/r[^"]*"[^>]*><body>hello from a<\/body>/,
      10_000,
    );
    bob.send("<message to='alice@a.test' type='chat' id='m2'><body>hello from b</body></message>");
    await alice.waitFor(
      /<message [^>]*from="bob@b.test\/r[^"]*"[^>]*><body>hello from b<\/body>/,
      10_000,
    );
    // An iq to the other server, answered by it.
    alice.send("<iq type='get' id='v1' to='b.test'><query xmlns='jabber:iq:version'/></iq>");
    const v = await alice.waitFor(/<iq [^>]*id="v1"[^>]*>[^]*?<\/iq>/, 10_000);
    assert.match(v[0], /type="result"/);
    assert.match(v[0], /<name>Cadence<\/name>/);
    // An iq to a user who is not there comes back as an error, across.
    alice.send("<iq type='get' id='v2' to='nobody@b.test/x'><ping xmlns='urn:xmpp:ping'/></iq>");
    const e = await alice.waitFor(/<iq [^>]*id="v2"[^>]*>[^]*?<\/iq>/, 10_000);
    assert.match(e[0], /type="error"/);
  });
});

Deno.test("s2s: a domain no server answers for bounces remote-server-not-found", async () => {
  await twoServers(async (a, _b, login) => {
    const alice = await login("alice", "a.test", a);
    alice.send("<message to='carol@c.test' type='chat' id='x1'><body>anyone?</body></message>");
    const err = await alice.waitFor(
      /<message [^>]*id="x1"[^>]*type="error"[^>]*>[^]*?<\/message>|<message [^>]*type="error"[^>]*id="x1"[^>]*>[^]*?<\/message>/,
      10_000,
    );
    assert.match(err[0], /<remote-server-not-found /);
    // Presence for it is not tried again for a while (no new lookup)...
    const asked = dnsAsked().length;
    alice.send("<presence to='carol@c.test' type='subscribe'/>");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(dnsAsked().length, asked);
    // ... but the next message is (a new lookup), and bounces again.
    alice.send("<message to='carol@c.test' type='chat' id='x2'><body>again?</body></message>");
    const again = await alice.waitFor(/<message [^>]*id="x2"[^>]*>[^]*?<\/message>/, 10_000);
    assert.match(again[0], /type="error"/);
    assert.match(again[0], /<remote-server-not-found /);
    assert.ok(dnsAsked().length > asked);
  });
});

Deno.test("s2s: a server that is not who it says fails dialback and gets no stanza in", async () => {
  await twoServers(async (_a, b, login) => {
    const bob = await login("bob", "b.test", b);
    const port = b.server.config.get("b.test", "s2s_ports") as number[] ?? [];
    const socket = connect(port[0], "127.0.0.1");
    let text = "";
    socket.on("data", (d) => text += d.toString());
    const until = async (re: RegExp) => {
      for (let i = 0; i < 500 && !re.test(text); i++) await new Promise((r) => setTimeout(r, 20));
      return text;
    };
    socket.write(
      "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
        "xmlns:db='jabber:server:dialback' from='a.test' to='b.test' version='1.0'>",
    );
    await until(/<\/stream:features>/);
    // A stanza before authenticating ends the stream.
    socket.write(
      "<message from='alice@a.test/x' to='bob@b.test' type='chat'><body>sneaky</body></message>",
    );
    assert.match(await until(/<\/stream:stream>/), /<not-authorized /);
    socket.destroy();
    // A made-up dialback key: b.test asks a.test's real server, which says no.
    const s2 = connect(port[0], "127.0.0.1");
    let t2 = "";
    s2.on("data", (d) => t2 += d.toString());
    s2.write(
      "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
        "xmlns:db='jabber:server:dialback' from='a.test' to='b.test' version='1.0'>",
    );
    for (let i = 0; i < 200 && !t2.includes("</stream:features>"); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    s2.write("<db:result from='a.test' to='b.test'>0123456789abcdef</db:result>");
    for (let i = 0; i < 500 && !/type='invalid'|type="invalid"/.test(t2); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(t2, /<db:result from='b.test' to='a.test' type='invalid'\/>/);
    s2.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.doesNotMatch(bob.received, /sneaky/);
  });
});

Deno.test("s2s: with s2s_require_encryption (the default) nothing comes in the clear", async () => {
  const port = await freePort();
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
    modules_enabled: ["roster", "saslauth", "s2s"],
    s2s_ports: [port],
    s2s_dns_server: "127.0.0.1:9", // (never asked)
  });
  try {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.on("data", (d) => text += d.toString());
    const until = async (s: string) => {
      for (let i = 0; i < 200 && !text.includes(s); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    socket.write(
      "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
        "xmlns:db='jabber:server:dialback' from='b.test' to='localhost' version='1.0'>",
    );
    await until("</stream:features>");
    // STARTTLS is offered, required; dialback is not offered before it.
    assert.match(
      text,
      /<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required\/><\/starttls>/,
    );
    assert.doesNotMatch(text, /urn:xmpp:features:dialback/);
    socket.write("<db:result from='b.test' to='localhost'>0123</db:result>");
    await until("</stream:stream>");
    assert.match(text, /<policy-violation /);
    socket.destroy();
  } finally {
    await t.stop();
  }
});

Deno.test("s2s: two servers with encryption required talk over STARTTLS", async () => {
  await twoServers(async (a, b, login) => {
    const alice = await login("alice", "a.test", a);
    const bob = await login("bob", "b.test", b);
    alice.send("<message to='bob@b.test' type='chat' id='t1'><body>over tls</body></message>");
    await bob.waitFor(/<body>over tls<\/body>/, 10_000);
    bob.send("<message to='alice@a.test' type='chat' id='t2'><body>back over tls</body></message>");
    await alice.waitFor(/<body>back over tls<\/body>/, 10_000);
  }, { s2s_require_encryption: true });
});

Deno.test("s2s: a malformed s2s_dns_server is a clear configuration error", async () => {
  await assert.rejects(
    startTestServer({
      ...PLAIN,
      modules_enabled: ["s2s"],
      s2s_ports: [await freePort()],
      s2s_dns_server: "dns.example.com",
    }),
    /s2s_dns_server: expected "address" or "address:port"/,
  );
});

Deno.test("s2s: incoming streams are rate limited (limits.s2sin); a wrong value is a clear error", async () => {
  await assert.rejects(
    startTestServer({
      ...PLAIN,
      modules_enabled: ["s2s"],
      s2s_ports: [await freePort()],
      limits: { s2sin: { rate: "lots" } },
    }),
    /limits.*s2sin/,
  );
  // 2 KB/s with a 1 s burst: 8 KB sent at once take seconds to be read, not milliseconds.
  const port = await freePort();
  const t = await startTestServer({
    ...PLAIN,
    modules_enabled: ["s2s"],
    s2s_ports: [port],
    limits: { s2sin: { rate: "2kb/s", burst: "1s" } },
  });
  try {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.on("data", (d) => text += d.toString());
    socket.write(
      "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
        "xmlns:db='jabber:server:dialback' from='x.test' to='localhost' version='1.0'>" +
        " ".repeat(8000) + "<message from='a@x.test' to='b@localhost'><body>late</body></message>",
    );
    const start = Date.now();
    for (let i = 0; i < 400 && !text.includes("</stream:stream>"); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // The stanza (unauthenticated: it ends the stream) is reached only once the bucket let it in.
    assert.match(text, /<not-authorized /);
    assert.ok(Date.now() - start >= 2000, `read too soon: ${Date.now() - start} ms`);
    socket.destroy();
  } finally {
    await t.stop();
  }
});

Deno.test("s2s: a route idle for s2s_timeout closes (both ends); the next message opens a new one", async () => {
  await twoServers(async (a, b, login) => {
    const alice = await login("alice", "a.test", a);
    const bob = await login("bob", "b.test", b);
    alice.send("<message to='bob@b.test' type='chat' id='i1'><body>before</body></message>");
    await bob.waitFor(/<body>before<\/body>/, 10_000);
    const s2s = (t: TestServer) =>
      (t.server.modules.get("*", "s2s")!.exports.connections as () => {
        outgoing: unknown[];
        incoming: unknown[];
      })();
    assert.equal(s2s(a).outgoing.length, 1);
    // Idle: a's route closes, and b's end of it with it.
    for (let i = 0; i < 100 && (s2s(a).outgoing.length || s2s(b).incoming.length); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(s2s(a).outgoing.length, 0);
    assert.equal(s2s(b).incoming.length, 0);
    alice.send("<message to='bob@b.test' type='chat' id='i2'><body>after</body></message>");
    await bob.waitFor(/<body>after<\/body>/, 10_000);
  }, { s2s_timeout: 2 });
});

Deno.test("s2s: unloading the module closes its port; loading it again opens it", async () => {
  const port = await freePort();
  const t = await startTestServer({ ...PLAIN, s2s_ports: [port] });
  try {
    assert.ok(await accepts("127.0.0.1", port));
    await t.server.modules.unload("*", "s2s");
    assert.equal(await accepts("127.0.0.1", port), false);
    await t.server.modules.load("*", "s2s");
    for (let i = 0; i < 50 && !await accepts("127.0.0.1", port); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(await accepts("127.0.0.1", port));
  } finally {
    await t.stop();
  }
});

Deno.test("s2s: a configuration reload that changes s2s_ports moves the listener", async () => {
  const [before, after] = [await freePort(), await freePort()];
  const t = await startTestServer({ ...PLAIN, s2s_ports: [before] });
  try {
    assert.ok(await accepts("127.0.0.1", before));
    await t.server.reload(
      validateConfig({ ...t.server.config.raw, s2s_ports: [after] }, {
        configDir: t.dataDir,
        builtinModulesDir: ModuleManager.builtinDir,
      }),
    );
    assert.ok(await accepts("127.0.0.1", after));
    assert.equal(await accepts("127.0.0.1", before), false);
  } finally {
    await t.stop();
  }
});
