/**
 * Found by the final review of the federation work (each failed before its
 * fix): the route table cannot be filled by unauthenticated peers or by one
 * local user; remote contacts hear of our users going offline at shutdown;
 * a remote contact's resources kept for PEP are bounded; a reload whose s2s
 * port is taken is tried again by the next one.
 */
import assert from "node:assert/strict";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import { freePort, startTestServer, type TestServer } from "../helpers/server.ts";
import { type DnsRecord, startDnsServer } from "../helpers/dns_server.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { Peer, sleep } from "../helpers/s2s_peer.ts";
import { parseXml } from "../../core/xml/parser.ts";
import { capsVer } from "../../core/xml/caps.ts";

const BASE = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  s2s_require_encryption: false,
  limits: false as const,
  modules_enabled: ["roster", "saslauth", "ping", "s2s"],
  virtual_hosts: { "a.test": {} },
};

/** A TCP server that takes connections and never says a word (a black hole that answers SYN). */
function listen(port: number, onConn: (s: Socket) => void): Promise<NetServer> {
  const srv = createServer((s) => {
    s.on("error", () => {});
    onConn(s);
  });
  return new Promise((r) => srv.listen(port, "127.0.0.1", () => r(srv)));
}

/**
 * a.test; `d0.test` … `d{n-1}.test` all point (SRV) at a silent port; `c.test`, a healthy
 * domain, at another port whose connections are counted.
 */
async function withServer(
  n: number,
  fn: (t: TestServer, s2sPort: number, cConnections: () => number) => Promise<void>,
) {
  const [s2sPort, holePort, cPort] = [await freePort(), await freePort(), await freePort()];
  const table: Record<string, DnsRecord[]> = {
    "_xmpp-server._tcp.c.test": [{ srv: [0, 0, cPort, "c.test"] }],
    "c.test": [{ a: "127.0.0.1" }],
    "hole.test": [{ a: "127.0.0.1" }],
  };
  for (let i = 0; i < n; i++) {
    table[`_xmpp-server._tcp.d${i}.test`] = [{ srv: [0, 0, holePort, "hole.test"] }];
  }
  const dns = await startDnsServer(table);
  const held: Socket[] = [];
  const hole = await listen(holePort, (s) => held.push(s));
  let c = 0;
  const cSrv = await listen(cPort, (s) => {
    c++;
    s.destroy();
  });
  const t = await startTestServer({
    ...BASE,
    s2s_ports: [s2sPort],
    s2s_dns_server: `127.0.0.1:${dns.nameServer.port}`,
  });
  try {
    await t.server.users("a.test")!.createUser("alice", "pw");
    await fn(t, s2sPort, () => c);
  } finally {
    for (const s of held) s.destroy();
    await t.stop();
    hole.close();
    cSrv.close();
    dns.close();
  }
}

const outgoing = (t: TestServer) =>
  (t.server.modules.get("*", "s2s")!.exports.connections as () => { outgoing: unknown[] })()
    .outgoing.length;

Deno.test("s2s limits: unauthenticated peers' dialback requests cannot fill the route table: users still reach other servers", async () => {
  await withServer(1000, async (t, s2sPort, cConnections) => {
    // 250 streams, 4 dialback requests each (MAX_PENDING_DIALBACK), for 1,000 claimed domains
    // that point at a black hole: each would make an outgoing route that waits
    // s2s_connect_timeout (at most 100 such routes are made).
    const peers: Peer[] = [];
    for (let s = 0; s < 250; s++) {
      const p = await Peer.open(s2sPort, `d${s * 4}.test`, "a.test");
      for (let k = 0; k < 4; k++) {
        p.send(`<db:result from='d${s * 4 + k}.test' to='a.test'>key</db:result>`);
      }
      peers.push(p);
    }
    for (let i = 0; i < 100 && outgoing(t) < 1000; i++) await sleep(50);
    const c = await RawClient.connect(t.port);
    try {
      await c.login("alice", "pw", "r", "a.test");
      c.send("<message to='carol@c.test' type='chat' id='m1'><body>hi</body></message>");
      // alice's message to a healthy server must at least be tried.
      for (let i = 0; i < 100 && cConnections() === 0; i++) await sleep(50);
      assert.ok(
        cConnections() > 0,
        `c.test was never tried (outgoing routes: ${outgoing(t)}; alice got: ${
          c.received.match(/<resource-constraint[^>]*>/)?.[0] ?? "nothing"
        })`,
      );
    } finally {
      c.close();
      for (const p of peers) p.close();
    }
  });
});

Deno.test("s2s limits: one local user's messages to 1,000 dead domains cannot stop federation for others", async () => {
  await withServer(1000, async (t, _s2sPort, cConnections) => {
    const mallory = await RawClient.connect(t.port);
    await t.server.users("a.test")!.createUser("mallory", "pw");
    await mallory.login("mallory", "pw", "r", "a.test");
    for (let i = 0; i < 1000; i++) {
      mallory.send(`<message to='x@d${i}.test' type='chat'><body>.</body></message>`);
    }
    for (let i = 0; i < 100 && outgoing(t) < 1000; i++) await sleep(50);
    const c = await RawClient.connect(t.port);
    try {
      await c.login("alice", "pw", "r", "a.test");
      c.send("<message to='carol@c.test' type='chat' id='m1'><body>hi</body></message>");
      for (let i = 0; i < 100 && cConnections() === 0; i++) await sleep(50);
      assert.ok(cConnections() > 0, `c.test was never tried (outgoing routes: ${outgoing(t)})`);
    } finally {
      c.close();
      mallory.close();
    }
  });
});

/** a.test and b.test on loopback, alice and bob each other's contacts (both ways). */
async function twoServers(
  fn: (
    a: TestServer,
    b: TestServer,
    login: (who: string, t: TestServer) => Promise<RawClient>,
  ) => Promise<void>,
  modules: string[] = [],
) {
  const [pa, pb] = [await freePort(), await freePort()];
  const dns = await startDnsServer({
    "_xmpp-server._tcp.a.test": [{ srv: [0, 0, pa, "a.test"] }],
    "_xmpp-server._tcp.b.test": [{ srv: [0, 0, pb, "b.test"] }],
    "a.test": [{ a: "127.0.0.1" }],
    "b.test": [{ a: "127.0.0.1" }],
  });
  const common = {
    ...BASE,
    modules_enabled: ["roster", "saslauth", "disco", "ping", "s2s", ...modules],
    s2s_dns_server: `127.0.0.1:${dns.nameServer.port}`,
  };
  const a = await startTestServer({ ...common, virtual_hosts: { "a.test": {} }, s2s_ports: [pa] });
  const b = await startTestServer({ ...common, virtual_hosts: { "b.test": {} }, s2s_ports: [pb] });
  const clients: RawClient[] = [];
  try {
    await a.server.users("a.test")!.createUser("alice", "pw");
    await b.server.users("b.test")!.createUser("bob", "pw");
    await a.server.rosters.modify("alice", "a.test", (r) => {
      r.items.set("bob@b.test", { subscription: "both", groups: [] });
      return ["bob@b.test"];
    });
    await b.server.rosters.modify("bob", "b.test", (r) => {
      r.items.set("alice@a.test", { subscription: "both", groups: [] });
      return ["alice@a.test"];
    });
    await fn(a, b, async (who, t) => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(who, "pw", "r", t === a ? "a.test" : "b.test");
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await a.stop();
    await b.stop();
    dns.close();
  }
}

Deno.test("s2s: at shutdown, remote contacts are told the local users went offline", async () => {
  await twoServers(async (a, b, login) => {
    const bob = await login("bob", b);
    bob.send("<presence/>");
    const alice = await login("alice", a);
    alice.send("<presence/>");
    await bob.waitFor(/<presence [^>]*from="alice@a.test\/r"/, 10_000);
    bob.clear();
    // a.test stops: c2s closes alice's session, and her unavailable presence must cross
    // (s2s closes its routes after c2s has closed the sessions: -200 after -100).
    await a.stop();
    await bob.waitFor(
      /<presence [^>]*type="unavailable"[^>]*>|<presence [^>]*from="alice@a.test\/r"[^>]*type="unavailable"/,
      5000,
    );
  });
});

const PUBSUB = "http://jabber.org/protocol/pubsub";
const TUNE = "http://jabber.org/protocol/tune";

Deno.test("pep: a remote contact's presence from many made-up resources is bounded (one publish, few notifications)", async () => {
  await twoServers(async (a, b, login) => {
    const alice = await login("alice", a);
    alice.send("<presence/>");
    const bob = await login("bob", b);
    // bob's caps, answered once (both servers ask): then every presence with them is a cache hit.
    const query = parseXml(
      "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc' name='t'/>" +
        `<feature var='${TUNE}+notify'/></query>`,
    );
    const ver = await capsVer(query);
    const c = `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='urn:t' ver='${ver}'/>`;
    bob.send(`<presence>${c}</presence>`);
    for (let answered = 0; answered < 2;) {
      const m = bob.received.match(/<iq [^>]*type="get"[^>]*>/g) ?? [];
      for (const iq of m.slice(answered)) {
        const id = iq.match(/id="([^"]+)"/)![1], from = iq.match(/from="([^"]+)"/)![1];
        bob.send(
          `<iq type='result' id='${id}' to='${from}'><query xmlns='http://jabber.org/protocol/disco#info' node='urn:t#${ver}'>` +
            query.children.map((x) => x.toString()).join("") + "</query></iq>",
        );
      }
      answered = m.length;
      await sleep(20);
    }
    await sleep(300);
    // b.test (any remote server with one contact of alice's) sends presence from 2,000 made-up
    // resources of bob's, each with those caps.
    const N = 2000;
    const origin = b.server.hostOrigin("b.test");
    for (let i = 0; i < N; i++) {
      origin.send(
        parseXml(`<presence from='bob@b.test/fake${i}' to='alice@a.test'>${c}</presence>`),
      );
    }
    await sleep(1500);
    // Count what one publish of alice's sends b.test.
    let events = 0;
    b.server.hosts.events("b.test")!.on("message/full", () => {
      events++;
    }, 1000);
    alice.send(
      `<iq type='set' id='p1'><pubsub xmlns='${PUBSUB}'><publish node='${TUNE}'><item id='t1'>` +
        `<tune xmlns='${TUNE}'><title>x</title></tune></item></publish></pubsub></iq>`,
    );
    await sleep(2000);
    assert.ok(events <= 100, `one publish sent ${events} notifications to bob's resources`);
  }, ["pep"]);
});

Deno.test("s2s: a reload whose s2s port is taken is tried again by the next reload", async () => {
  const { accepts } = await import("../helpers/net.ts");
  const { validateConfig } = await import("../../core/config.ts");
  const { ModuleManager } = await import("../../core/modulemanager.ts");
  const [before, busy] = [await freePort(), await freePort()];
  const squatter = await listen(busy, (s) => s.destroy());
  const t = await startTestServer({ ...BASE, s2s_ports: [before] });
  const reload = () =>
    t.server.reload(
      validateConfig({ ...t.server.config.raw, s2s_ports: [busy] }, {
        configDir: t.dataDir,
        builtinModulesDir: ModuleManager.builtinDir,
      }),
    ).catch((e) => e);
  try {
    assert.ok(await accepts("127.0.0.1", before));
    await reload(); // busy is taken: fails (the old port is already closed)
    await new Promise<void>((r) => squatter.close(() => r()));
    await reload(); // the same configuration, the port free now
    for (let i = 0; i < 20 && !await accepts("127.0.0.1", busy); i++) await sleep(100);
    assert.ok(await accepts("127.0.0.1", busy), "s2s listens on the port once it is free");
  } finally {
    squatter.close();
    await t.stop();
  }
});
