/**
 * Review of STARTTLS in modules/s2s (outgoing and incoming), of the
 * "recently failed" route cache, and of s2s for components. `b.test` is a
 * Cadence server; `evil.test` is a scripted fake remote server on loopback
 * (plaintext, and TLS with b.test's own certificate where a test needs it).
 *
 * Each test was written failing, for what its comment says was wrong.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { connect as tlsConnect, type SecureContext, TLSSocket } from "node:tls";
import { freePort, startTestServer, type TestServer } from "../helpers/server.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { HEADER, Peer, sleep } from "../helpers/s2s_peer.ts";

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  s2s_require_encryption: false,
};
const TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls";

const REPLY_HEADER = (id: string) =>
  "<?xml version='1.0'?><stream:stream xmlns='jabber:server' " +
  "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' " +
  `id='${id}' version='1.0'>`;

/** What a scripted fake remote server sees on one connection, and how it answers. */
interface FakeConn {
  socket: Socket;
  /** Everything received in the clear. */
  plain: string;
  /** Everything received decrypted, after `startTls`. */
  secure: string;
  write(s: string): void;
  /** Turns the connection into a TLS server (with `context`); later input lands in `secure`. */
  startTls(context: SecureContext): void;
}

/**
 * A fake remote server: `onInput(conn, text, isTls)` is called with each
 * chunk (plain or decrypted) and answers as the test wants.
 */
async function fakeRemote(
  onInput: (c: FakeConn, chunk: string, isTls: boolean) => void,
): Promise<{ port: number; conns: FakeConn[]; all: () => string; close: () => Promise<void> }> {
  const conns: FakeConn[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    let out: Socket = s;
    const c: FakeConn = {
      socket: s,
      plain: "",
      secure: "",
      write: (x) => void out.write(x),
      startTls(context) {
        s.removeAllListeners("data");
        const t = new TLSSocket(s, { isServer: true, secureContext: context });
        t.on("error", () => {});
        t.on("data", (d) => {
          c.secure += d.toString();
          onInput(c, d.toString(), true);
        });
        out = t;
      },
    };
    conns.push(c);
    s.on("data", (d) => {
      c.plain += d.toString();
      onInput(c, d.toString(), false);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    port,
    conns,
    all: () => conns.map((c) => c.plain + c.secure).join(""),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface World {
  b: TestServer;
  s2sPort: number;
  dns: DnsServer;
  login: (who: string, host?: string) => Promise<RawClient>;
}

/** b.test (Cadence, with bob) and evil.test at `evilPort`, one DNS. */
async function world(
  evilPort: number,
  fn: (w: World) => Promise<void>,
  extra: Record<string, unknown> = {},
  users: [string, string][] = [["bob", "b.test"]],
) {
  const s2sPort = await freePort();
  const dns = await startDnsServer({
    "_xmpp-server._tcp.b.test": [{ srv: [0, 0, s2sPort, "b.test"] }],
    "_xmpp-server._tcp.evil.test": [{ srv: [0, 0, evilPort, "evil.test"] }],
    "b.test": [{ a: "127.0.0.1" }],
    "evil.test": [{ a: "127.0.0.1" }],
  });
  const b = await startTestServer({
    ...PLAIN,
    s2s_dns_server: `127.0.0.1:${dns.nameServer.port}`,
    modules_enabled: ["roster", "saslauth", "disco", "ping", "version", "s2s"],
    virtual_hosts: { "b.test": {} },
    s2s_ports: [s2sPort],
    ...extra,
  });
  const clients: RawClient[] = [];
  try {
    for (const [u, h] of users) await b.server.users(h)!.createUser(u, "pw");
    await fn({
      b,
      s2sPort,
      dns,
      login: async (who, host = "b.test") => {
        const c = await RawClient.connect(b.port);
        clients.push(c);
        await c.login(who, "pw", "r", host);
        c.send("<presence/>");
        return c;
      },
    });
  } finally {
    for (const c of clients) c.close();
    await b.stop();
    dns.close();
  }
}

// Harness check: over STARTTLS with the fake, our route sends a new stream
// header after TLS and its dialback key; nothing else goes out before the peer says valid.
Deno.test("s2s tls review (harness): the outgoing route restarts the stream after STARTTLS", async () => {
  let ctx: SecureContext | undefined;
  const evil = await fakeRemote((c, chunk, isTls) => {
    if (!isTls && chunk.includes("<stream:stream")) {
      c.write(
        REPLY_HEADER("plain-1") + `<stream:features><starttls xmlns='${TLS_NS}'/>` +
          "</stream:features>",
      );
    } else if (!isTls && chunk.includes("<starttls")) {
      c.write(`<proceed xmlns='${TLS_NS}'/>`);
      c.startTls(ctx!);
    } else if (isTls && chunk.includes("<stream:stream")) {
      c.write(REPLY_HEADER("after-tls") + "<stream:features/>");
    }
  });
  try {
    await world(evil.port, async (w) => {
      ctx = (await w.b.server.tls.get("b.test")).context;
      const bob = await w.login("bob");
      bob.send("<message to='mallory@evil.test' type='chat'><body>secret</body></message>");
      for (let i = 0; i < 250 && !/<db:result/.test(evil.all()); i++) await sleep(20);
      const c = evil.conns[0];
      assert.match(c.secure, /<stream:stream [^>]*to=['"]evil\.test['"]/);
      assert.match(c.secure, /<db:result from='b.test' to='evil.test'>[0-9a-f]+<\/db:result>/);
      assert.doesNotMatch(evil.all(), /secret/);
    }, { s2s_require_encryption: true });
  } finally {
    await evil.close();
  }
});

// mod.ts:227-238 (outgoing parser): <db:result type='valid'/> is acted on in any state — before
// TLS, before our stream features were even seen, before we sent a key at all. With
// s2s_require_encryption (the default) a peer, or anyone on the path of the plaintext TCP
// connection, answers the stream header with a bare <db:result type='valid'/> and the route goes
// "ready": the queued stanzas are written IN THE CLEAR, bypassing s2s_require_encryption (and the
// setup timer is cleared). Fix: accept db:result (and db:verify answers) only in state "open"
// (after our key was sent, i.e. after TLS when required), and only with from=r.remote, to=r.local;
// anything else ends the stream.
Deno.test({
  name: "s2s tls review: a db:result 'valid' before TLS does not send stanzas in the clear",

  fn: async () => {
    const evil = await fakeRemote((c, chunk) => {
      if (chunk.includes("<stream:stream")) {
        c.write(REPLY_HEADER("p1") + "<db:result from='evil.test' to='b.test' type='valid'/>");
      }
    });
    try {
      await world(evil.port, async (w) => {
        const bob = await w.login("bob");
        bob.send("<message to='mallory@evil.test' type='chat'><body>secret</body></message>");
        for (let i = 0; i < 100 && !/secret/.test(evil.all()); i++) await sleep(20);
        assert.doesNotMatch(evil.all(), /secret/, "a stanza went out unencrypted");
      }, { s2s_require_encryption: true });
    } finally {
      await evil.close();
    }
  },
});

// mod.ts:210-222: on <proceed/> the outgoing side starts TLS but resets the parser only in the
// .then() once the handshake is done (mod.ts:219). The rest of the chunk that carried <proceed/>
// — plaintext, sent before TLS — keeps being parsed as the stream in the same run() loop
// (CVE-2011-0411 style). A man in the middle appends <db:result type='valid'/> (or a
// <db:verify type='valid' id=…/> answering a pending verification: a forged incoming dialback),
// and conn.secure is already true (connection.ts startTlsClient sets it synchronously), so the
// queued stanzas are written into the TLS socket with no dialback ever done by the real peer,
// and the setup timer is cleared. Fix: call parser.reset() synchronously right after
// startTlsClient() (as the incoming side does), and ignore input until the new header; the
// .then() only writes the new header.
Deno.test({
  name: "s2s tls review: plaintext after <proceed/> is not read as part of the TLS stream",

  fn: async () => {
    let ctx: SecureContext | undefined;
    const evil = await fakeRemote((c, chunk, isTls) => {
      if (!isTls && chunk.includes("<stream:stream")) {
        c.write(
          REPLY_HEADER("plain-1") + `<stream:features><starttls xmlns='${TLS_NS}'/>` +
            "</stream:features>",
        );
      } else if (!isTls && chunk.includes("<starttls")) {
        // One write: <proceed/> and, injected in the clear, a dialback "valid".
        c.write(
          `<proceed xmlns='${TLS_NS}'/>` +
            "<db:result from='evil.test' to='b.test' type='valid'/>",
        );
        c.startTls(ctx!);
      } else if (isTls && chunk.includes("<stream:stream")) {
        c.write(REPLY_HEADER("after-tls") + "<stream:features/>"); // never says valid
      }
    });
    try {
      await world(evil.port, async (w) => {
        ctx = (await w.b.server.tls.get("b.test")).context;
        const bob = await w.login("bob");
        bob.send("<message to='mallory@evil.test' type='chat'><body>secret</body></message>");
        for (let i = 0; i < 100 && !/secret/.test(evil.all()); i++) await sleep(20);
        assert.doesNotMatch(
          evil.all(),
          /secret/,
          "the stanza was sent on a dialback 'valid' injected before TLS",
        );
      }, { s2s_require_encryption: true });
    } finally {
      await evil.close();
    }
  },
});

// mod.ts:101/141-149 and 301-302: the failed-route cache is keyed by the remote domain only, and
// fail() is reached for failures of one (local, remote) pair — a dialback key refused for one of
// our hosts (mod.ts:237), a route timing out. One host refused by evil.test (blocked there, say)
// makes every other host of this server bounce remote-server-not-found to evil.test for 60 s
// without trying. Fix: key the cache by `${local}|${remote}` for pair failures (keep the
// domain-wide entry only for "no server answered"/DNS failures), and purge expired entries
// (before the fix they stayed until a stanza for that very domain comes, and once 1000 are held nothing new
// is ever cached: mod.ts:301).
Deno.test({
  name: "s2s tls review: one local host's refused dialback does not block another host's route",

  fn: async () => {
    const evil = await fakeRemote((c, chunk) => {
      if (chunk.includes("<stream:stream")) {
        c.write(REPLY_HEADER(`f${Math.random()}`) + "<stream:features/>");
      }
      const m = chunk.match(/<db:result from='([^']*)' to='evil\.test'>/);
      if (m) {
        c.write(
          `<db:result from='evil.test' to='${m[1]}' type='${
            m[1] === "x.test" ? "invalid" : "valid"
          }'/>`,
        );
      }
    });
    try {
      await world(
        evil.port,
        async (w) => {
          const xu = await w.login("xu", "x.test");
          const bob = await w.login("bob");
          xu.send(
            "<message to='mallory@evil.test' type='chat' id='x1'><body>from x</body></message>",
          );
          await xu.waitFor(/<message [^>]*type=["']error["']/, 10_000);
          bob.send(
            "<message to='mallory@evil.test' type='chat' id='b1'><body>from bob</body></message>",
          );
          for (let i = 0; i < 150 && !/from bob/.test(evil.all()); i++) await sleep(20);
          assert.doesNotMatch(bob.received, /remote-server-not-found/);
          assert.match(evil.all(), /from bob/);
        },
        { virtual_hosts: { "b.test": {}, "x.test": {} } },
        [["bob", "b.test"], ["xu", "x.test"]],
      );
    } finally {
      await evil.close();
    }
  },
});

// mod.ts:436-445: <starttls/> is accepted on an incoming stream after dialback has already
// authenticated a pair in plaintext (s2s_require_encryption = false). The pairs (and pending
// dialback answers) survive the TLS restart into the new stream, which may even name another
// host in its header: authentication done in the clear is carried into the "secure" stream.
// STARTTLS belongs before authentication (RFC 6120 §5.3.1, §5.4.3.3). Fix: refuse starttls
// (<failure/> and close) once a pair is authenticated or a dialback is pending — or clear
// `pairs` on the restart.
Deno.test({
  name: "s2s tls review: STARTTLS after plaintext dialback is refused",

  fn: async () => {
    const evil = await fakeRemote((c, chunk) => {
      if (chunk.includes("<stream:stream")) c.write(REPLY_HEADER("v") + "<stream:features/>");
      for (const m of chunk.matchAll(/<db:verify from='([^']*)' to='([^']*)' id='([^']*)'>/g)) {
        c.write(`<db:verify from='${m[2]}' to='${m[1]}' id='${m[3]}' type='valid'/>`);
      }
      for (const m of chunk.matchAll(/<db:result from='([^']*)' to='evil\.test'>/g)) {
        c.write(`<db:result from='evil.test' to='${m[1]}' type='valid'/>`);
      }
    });
    try {
      await world(evil.port, async (w) => {
        const p = await Peer.open(w.s2sPort, "evil.test", "b.test");
        assert.match(p.text, /<starttls /);
        p.send("<db:result from='evil.test' to='b.test'>k</db:result>");
        assert.ok(await p.until(/type='valid'\/>/), p.text);
        p.send(`<starttls xmlns='${TLS_NS}'/>`);
        await p.until(/<proceed|<failure|<\/stream:stream>/, 3000);
        assert.doesNotMatch(p.text, /<proceed/);
        p.close();
      });
    } finally {
      await evil.close();
    }
  },
});

// Incoming STARTTLS offers only hosts whose TLS material is loaded (mod.ts:418, module.tlsFor),
// and only addHost (mod.ts:542) loads it — components do not run addHost. With
// s2s_require_encryption (the default), a stream to a component (MUC) gets neither STARTTLS
// nor dialback in its features, and anything it sends is a policy-violation: no remote server
// can ever reach the component. Fix: loadTls() for components too (in forComponent), or call
// module.loadTls(local) on the stream header before offering features.
Deno.test({
  name: "s2s tls review: with encryption required, a component is offered STARTTLS",

  fn: async () => {
    const evil = await fakeRemote(() => {});
    try {
      await world(evil.port, async (w) => {
        const p = await Peer.open(w.s2sPort, "evil.test", "muc.b.test");
        assert.match(p.text, /<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>/);
        p.close();
      }, { s2s_require_encryption: true, components: { "muc.b.test": { module: "muc" } } });
    } finally {
      await evil.close();
    }
  },
});

// Incoming: bytes sent in the clear right after <starttls/> (same packet) are dropped, and a
// second <starttls/> inside TLS is refused.
Deno.test("s2s tls review: incoming plaintext after <starttls/> is dropped; starttls twice fails", async () => {
  const evil = await fakeRemote(() => {});
  try {
    await world(evil.port, async (w) => {
      const bob = await w.login("bob");
      const p = await Peer.open(w.s2sPort, "evil.test", "b.test");
      p.send(
        `<starttls xmlns='${TLS_NS}'/>` +
          "<message from='mallory@evil.test' to='bob@b.test'><body>injected</body></message>",
      );
      assert.ok(await p.until(/<proceed /), p.text);
      p.socket.removeAllListeners("data");
      const t = tlsConnect({ socket: p.socket, servername: "b.test", rejectUnauthorized: false });
      let dec = "";
      t.on("data", (d) => dec += d.toString());
      t.on("error", () => {});
      await Promise.race([new Promise((r) => t.once("secureConnect", r)), sleep(5000)]);
      t.write(HEADER("evil.test", "b.test"));
      for (let i = 0; i < 100 && !/<\/stream:features>/.test(dec); i++) await sleep(20);
      assert.match(dec, /<stream:stream [^>]*id='[^']+'/);
      assert.doesNotMatch(dec, /<starttls/);
      assert.match(dec, /urn:xmpp:features:dialback/);
      t.write(`<starttls xmlns='${TLS_NS}'/>`);
      for (let i = 0; i < 100 && !/<\/stream:stream>/.test(dec); i++) await sleep(20);
      assert.match(dec, /<failure /);
      await sleep(200);
      assert.doesNotMatch(bob.received, /injected/);
      t.destroy();
    }, { s2s_require_encryption: true });
  } finally {
    await evil.close();
  }
});
