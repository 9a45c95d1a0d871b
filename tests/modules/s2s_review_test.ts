/**
 * Review of modules/s2s (server-to-server with dialback): a hostile remote
 * server, played by raw sockets. `b.test` is a Cadence server; `evil.test`
 * is a fake authoritative server on loopback that says "valid" to every
 * dialback question, so a raw stream can legitimately authenticate as
 * evil.test and then try what it should not be able to do.
 *
 * Each test was written failing, for what its comment says was wrong.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { freePort, startTestServer, type TestServer } from "../helpers/server.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { Peer, sleep } from "../helpers/s2s_peer.ts";

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  s2s_require_encryption: false,
};

/**
 * A fake authoritative server for any domain: answers every `db:verify` and
 * every `db:result` it is sent with type='valid'. Records every stream
 * header it receives.
 */
async function fakeAuthority(): Promise<
  { port: number; headers: string[]; data: string[]; close: () => Promise<void> }
> {
  const headers: string[] = [];
  const data: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    let buf = "";
    s.on("data", (d) => {
      buf += d.toString();
      data.push(d.toString());
      for (;;) {
        // Whatever comes first in the buffer is answered first.
        const found = [
          buf.match(/<stream:stream [^>]*>/),
          buf.match(/<db:verify [^>]*>[^<]*<\/db:verify>/),
          buf.match(/<db:result [^>]*>[^<]*<\/db:result>/),
        ].filter((m): m is RegExpMatchArray => m !== null)
          .sort((a, b) => a.index! - b.index!)[0];
        if (!found) break;
        const el = found[0];
        buf = buf.slice(found.index! + el.length);
        if (el.startsWith("<stream:stream")) {
          headers.push(el);
          s.write(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:server' " +
              "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' " +
              `id='fake-${headers.length}' version='1.0'><stream:features/>`,
          );
          continue;
        }
        const from = el.match(/from=['"]([^'"]*)/)![1];
        const to = el.match(/to=['"]([^'"]*)/)![1];
        if (el.startsWith("<db:verify")) {
          const id = el.match(/id=['"]([^'"]*)/)![1];
          s.write(`<db:verify from='${to}' to='${from}' id='${id}' type='valid'/>`);
        } else {
          s.write(`<db:result from='${to}' to='${from}' type='valid'/>`);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    port,
    headers,
    data,
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
  evil: Awaited<ReturnType<typeof fakeAuthority>>;
  login: (who: string) => Promise<RawClient>;
}

/** b.test (Cadence, with bob), evil.test and c.test (the fake authority), one DNS. */
async function world(fn: (w: World) => Promise<void>, extra: Record<string, unknown> = {}) {
  const s2sPort = await freePort();
  const evil = await fakeAuthority();
  const dns = await startDnsServer({
    "_xmpp-server._tcp.b.test": [{ srv: [0, 0, s2sPort, "b.test"] }],
    "_xmpp-server._tcp.evil.test": [{ srv: [0, 0, evil.port, "evil.test"] }],
    "_xmpp-server._tcp.c.test": [{ srv: [0, 0, evil.port, "c.test"] }],
    "b.test": [{ a: "127.0.0.1" }],
    "evil.test": [{ a: "127.0.0.1" }],
    "c.test": [{ a: "127.0.0.1" }],
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
    await b.server.users("b.test")!.createUser("bob", "pw");
    await fn({
      b,
      s2sPort,
      dns,
      evil,
      login: async (who) => {
        const c = await RawClient.connect(b.port);
        clients.push(c);
        await c.login(who, "pw", "r", "b.test");
        c.send("<presence/>");
        return c;
      },
    });
  } finally {
    for (const c of clients) c.close();
    await b.stop();
    await evil.close();
    dns.close();
  }
}

/** A raw stream from evil.test to b.test, authenticated by dialback (evil.test vouches for it). */
async function authenticatedAsEvil(w: World): Promise<Peer> {
  const p = await Peer.open(w.s2sPort, "evil.test", "b.test");
  p.send("<db:result from='evil.test' to='b.test'>whatever-evil-says</db:result>");
  assert.ok(
    await p.until(/<db:result from='b.test' to='evil.test' type='valid'\/>/),
    `dialback as evil.test did not succeed: ${p.text}`,
  );
  return p;
}

Deno.test("s2s review (harness): a stream authenticated as evil.test delivers evil.test's stanzas", async () => {
  await world(async (w) => {
    const bob = await w.login("bob");
    const p = await authenticatedAsEvil(w);
    p.send(
      "<message from='mallory@evil.test/x' to='bob@b.test' type='chat'><body>fair</body></message>",
    );
    await bob.waitFor(/<body>fair<\/body>/, 10_000);
    p.close();
  });
});

// mod.ts:452 domainOf() takes the first '@' of the whole JID, resource included, while a JID's
// domain is what precedes the first '/' (core/jid.ts split(), and the router's own parsing at
// core/router.ts:146-151). 'b.test/x@evil.test' is the domain JID b.test with resource
// "x@evil.test", but domainOf() says "evil.test" — so the pair check at mod.ts:362 passes and a
// stream authenticated only for evil.test gets a stanza in from b.test (our own domain!), or
// from any other domain. Fix: parse with core/jid.ts (prep() then hostOf(), refusing malformed
// JIDs with improper-addressing), in domainOf() and in addHost's route/remote too.
Deno.test({
  name: "s2s review: a from whose resource holds '@evil.test' is not taken as evil.test's",

  fn: async () => {
    await world(async (w) => {
      const bob = await w.login("bob");
      const p = await authenticatedAsEvil(w);
      // Spoofing our own server's domain (and a remote one).
      p.send(
        "<message from='b.test/x@evil.test' to='bob@b.test' type='chat'><body>spoof1</body></message>",
      );
      p.send(
        "<message from='a.test/x@evil.test' to='bob@b.test' type='chat'><body>spoof2</body></message>",
      );
      await sleep(1000);
      assert.doesNotMatch(bob.received, /spoof1|spoof2/);
      p.close();
    });
  },
});

// Same domainOf() flaw on `to` (mod.ts:361): to='c.test/x@b.test' passes the pair check as if
// it were for b.test, but the router routes it to c.test. c.test is not ours, so it goes out
// through route/remote, and addHost (mod.ts:442) — domainOf(from) again — opens a route
// *as evil.test*, a domain this server does not host: Cadence relays for anyone who can
// authenticate one domain and claims to be that domain towards third parties (the route's
// dialback key even comes from our secret). The same trick reaches any other host or component
// on this server without a pair for it. Fix as above; also refuse, in route/remote, a stanza
// whose from is not one of our hosts (Prosody: the from_host of a route must be a local host).
Deno.test({
  name: "s2s review: a to whose resource holds '@b.test' is not routed to another domain",

  fn: async () => {
    await world(async (w) => {
      const p = await authenticatedAsEvil(w);
      const before = w.evil.headers.length;
      p.send(
        "<message from='mallory@evil.test/x' to='c.test/x@b.test' type='chat'><body>relay</body></message>",
      );
      await sleep(1500);
      assert.ok(
        !w.dns.asked.some((q) => q.startsWith("_xmpp-server._tcp.c.test")),
        `b.test looked c.test up to relay to it: ${w.dns.asked.join(", ")}`,
      );
      const opened = w.evil.headers.slice(before);
      assert.ok(
        !opened.some((h) => /from=['"]evil\.test['"]/.test(h)),
        `b.test opened a stream claiming to be evil.test: ${opened.join(" ")}`,
      );
      p.close();
    });
  },
});

// Every <db:result/> on an incoming stream starts a verification (mod.ts:401) — a DNS lookup
// and up to 32 outgoing connections (srv.ts MAX_RECORDS, 10 s each) to wherever the claimed
// domain's SRV records point — with no limit per stream, per peer or overall, before the
// peer has authenticated anything (the stream is only ended after the first *answer* comes
// back invalid, mod.ts:413, when all the others are already on their way). One small packet
// of db:results makes Cadence resolve and connect to many attacker-chosen domains/addresses
// (amplification, port scanning from our address), and each fills `routes`. Fix: a cap on
// dialback requests pending per incoming stream (a few) and on routes being set up overall;
// refuse more with <policy-violation/> (or <db:result type='error'><resource-constraint/>).
Deno.test({
  name: "s2s review: one unauthenticated stream cannot make the server verify 50 domains at once",

  fn: async () => {
    await world(async (w) => {
      const p = await Peer.open(w.s2sPort, "evil.test", "b.test");
      let burst = "";
      for (let i = 0; i < 50; i++) {
        burst += `<db:result from='d${i}.test' to='b.test'>k</db:result>`;
      }
      p.send(burst);
      await p.until(/<\/stream:stream>/, 5000);
      await sleep(500);
      const looked = new Set(
        w.dns.asked.filter((q) => /^_xmpp-server\._tcp\.d\d+\.test /.test(q)).map((q) =>
          q.split(" ")[0]
        ),
      );
      assert.ok(looked.size <= 10, `${looked.size} domains resolved for one stream`);
      p.close();
    });
  },
});

// Components are accepted as the `to` of an incoming db:result (mod.ts:396 hostType() !==
// undefined), and stanzas from remote servers reach them, but s2s's addHost() — the
// route/remote hook — is only run on hosts that load s2s, and a component loads only its
// own module (core/config.ts modulesFor). So a component's answers to a remote JID find no
// route/remote handler and the router answers "Communication with remote domains is not
// enabled": a remote user can join a MUC but never gets its presence back. Prosody routes a
// component's stanzas to remote servers. Fix: hook route/remote for every host (e.g. on
// "host-activated"), not only for those that list s2s.
// Worse, before the fix this test ended in "RangeError: Maximum call stack size exceeded" (an uncaught
// rejection that takes the test runner down): the router's remote-server-not-found reply
// (core/router.ts:243) goes back into the room as an error presence from the occupant, the
// room takes it as the occupant leaving (modules/muc/occupants.ts:248, leave → broadcast
// presence to the occupant), which again has no route… forever. One presence from any
// authenticated remote server does this.
Deno.test({
  name: "s2s review: a component (MUC) answers a remote user across s2s",

  fn: async () => {
    await world(async (w) => {
      // (The fake authority answers valid for the route muc.b.test → evil.test too.)
      const q = await Peer.open(w.s2sPort, "evil.test", "muc.b.test");
      q.send("<db:result from='evil.test' to='muc.b.test'>k</db:result>");
      assert.ok(await q.until(/type='valid'/), q.text);
      q.send(
        "<presence from='mallory@evil.test/x' to='room@muc.b.test/mallory'>" +
          "<x xmlns='http://jabber.org/protocol/muc'/></presence>",
      );
      // The room's answer (the occupant's own presence) goes over the route muc.b.test → evil.test.
      const got = () =>
        /<presence [^>]*from=["']room@muc\.b\.test\/mallory/.test(w.evil.data.join(""));
      for (let i = 0; i < 250 && !got(); i++) await sleep(20);
      assert.ok(got(), `no presence from the room reached evil.test: ${w.evil.data.join("")}`);
      q.close();
    }, { components: { "muc.b.test": { module: "muc" } } });
  },
});
