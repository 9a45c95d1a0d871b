/**
 * Certificate authentication between two Cadence servers (a.test, b.test)
 * with certificates from a test CA: SASL EXTERNAL both ways when each
 * trusts the other's certificate (through an intermediate too), dialback
 * when one does not, refusal under `s2s_secure_auth` / `s2s_secure_domains`
 * unless `s2s_insecure_domains` lists the peer, and direct TLS
 * (`s2s_direct_tls_ports`, `_xmpps-server` SRV).
 */
import assert from "node:assert/strict";
import { freePort, startTestServer, type TestServer } from "../helpers/server.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { issueCert, makeCa, type TestCert } from "../helpers/certs.ts";

interface Pki {
  dir: string;
  ca: TestCert;
  /** Certificates by name. */
  certs: Record<string, TestCert>;
}

async function makePki(): Promise<Pki> {
  const dir = await Deno.makeTempDir({ prefix: "cadence-s2s-pki-" });
  const ca = await makeCa(dir, "root");
  const inter = await issueCert(dir, ca, "inter", { ca: true });
  const other = await makeCa(dir, "other");
  return {
    dir,
    ca,
    certs: {
      // a.test's comes through an intermediate: the chain it sends is what proves it.
      "a.test": await issueCert(dir, inter, "a.test", { dns: ["a.test"] }),
      "b.test": await issueCert(dir, ca, "b.test", { dns: ["b.test"] }),
      "b.test-untrusted": await issueCert(dir, other, "b.test-untrusted", { dns: ["b.test"] }),
    },
  };
}

type Connections = {
  outgoing: {
    local: string;
    remote: string;
    auth?: string;
    certificate?: string;
    secure: boolean;
  }[];
  incoming: { secure: boolean; pairs: { from: string; to: string; auth: string }[] }[];
};
const connections = (t: TestServer) =>
  (t.server.modules.get("*", "s2s")!.exports.connections as () => Connections)();

interface Setup {
  a?: Record<string, unknown>;
  b?: Record<string, unknown>;
  /** b.test's certificate (default: one from the trusted CA). */
  bCert?: string;
  /** b.test is published only as direct TLS (`_xmpps-server`). */
  bDirectTls?: boolean;
}

async function twoServers(
  pki: Pki,
  setup: Setup,
  fn: (a: TestServer, b: TestServer, alice: RawClient, bob: RawClient) => Promise<void>,
) {
  const [pa, pb, pbTls] = [await freePort(), await freePort(), await freePort()];
  const dns = await startDnsServer({
    "_xmpp-server._tcp.a.test": [{ srv: [0, 0, pa, "a.test"] }],
    ...(setup.bDirectTls
      ? { "_xmpps-server._tcp.b.test": [{ srv: [0, 0, pbTls, "b.test"] }] }
      : { "_xmpp-server._tcp.b.test": [{ srv: [0, 0, pb, "b.test"] }] }),
    "a.test": [{ a: "127.0.0.1" }],
    "b.test": [{ a: "127.0.0.1" }],
  });
  const common = {
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
    s2s_dns_server: `127.0.0.1:${dns.nameServer.port}`,
    s2s_cafile: pki.ca.cert,
    modules_enabled: ["roster", "saslauth", "disco", "ping", "s2s"],
  };
  const cert = (name: string) => ({
    certificate: pki.certs[name].cert,
    key: pki.certs[name].key,
  });
  const a = await startTestServer({
    ...common,
    virtual_hosts: { "a.test": { ssl: cert("a.test") } },
    s2s_ports: [pa],
    ...setup.a,
  });
  const b = await startTestServer({
    ...common,
    virtual_hosts: { "b.test": { ssl: cert(setup.bCert ?? "b.test") } },
    s2s_ports: [pb],
    s2s_direct_tls_ports: [pbTls],
    ...setup.b,
  });
  const clients: RawClient[] = [];
  try {
    await a.server.users("a.test")!.createUser("alice", "pw");
    await b.server.users("b.test")!.createUser("bob", "pw");
    const login = async (who: string, host: string, t: TestServer) => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(who, "pw", "r", host);
      c.send("<presence/>");
      return c;
    };
    await fn(a, b, await login("alice", "a.test", a), await login("bob", "b.test", b));
  } finally {
    for (const c of clients) c.close();
    await a.stop();
    await b.stop();
    dns.close();
  }
}

/** alice → bob and bob → alice, each arriving. */
async function chatBothWays(alice: RawClient, bob: RawClient) {
  alice.send("<message to='bob@b.test' type='chat' id='m1'><body>hi b</body></message>");
  await bob.waitFor(/<message [^>]*from="alice@a.test\/r"[^>]*>[^]*?hi b/, 10_000);
  bob.send("<message to='alice@a.test' type='chat' id='m2'><body>hi a</body></message>");
  await alice.waitFor(/<message [^>]*from="bob@b.test\/r"[^>]*>[^]*?hi a/, 10_000);
}

/** A message that comes back as an error with `condition`. */
async function bounced(from: RawClient, to: string, condition: string) {
  from.send(`<message to='${to}' type='chat' id='x1'><body>anyone?</body></message>`);
  const err = await from.waitFor(/<message [^>]*id="x1"[^>]*>[^]*?<\/message>/, 10_000);
  assert.match(err[0], /type="error"/);
  assert.match(err[0], new RegExp(`<${condition} `));
  return err[0];
}

/** Runs `fn` with a fresh set of certificates, removed after. */
const withPki = async (fn: (pki: Pki) => Promise<void>) => {
  const pki = await makePki();
  try {
    await fn(pki);
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
};

Deno.test("s2s certificates: trusted both ways, each server authenticates with SASL EXTERNAL", () =>
  withPki((pki) =>
    twoServers(pki, {}, async (a, b, alice, bob) => {
      await chatBothWays(alice, bob);
      const out = connections(a).outgoing.find((r) => r.remote === "b.test")!;
      assert.equal(out.auth, "SASL EXTERNAL");
      assert.equal(out.certificate, "valid");
      assert.ok(out.secure);
      // b took a's certificate through its intermediate, for the pair a.test → b.test.
      const pairs = connections(b).incoming.flatMap((s) => s.pairs);
      assert.deepEqual(pairs, [{ from: "a.test", to: "b.test", auth: "SASL EXTERNAL" }]);
      assert.equal(connections(b).outgoing[0].auth, "SASL EXTERNAL");
    })
  ));

Deno.test("s2s certificates: an untrusted certificate falls back to dialback (s2s_secure_auth off)", () =>
  withPki((pki) =>
    twoServers(pki, { bCert: "b.test-untrusted" }, async (a, b, alice, bob) => {
      await chatBothWays(alice, bob);
      // a's route: b took a's good certificate; a saw b's was not trusted (and went on).
      const out = connections(a).outgoing.find((r) => r.remote === "b.test")!;
      assert.equal(out.auth, "SASL EXTERNAL");
      assert.equal(out.certificate, "issuer not trusted");
      // b's route: a did not offer b SASL EXTERNAL, so b authenticated by dialback.
      assert.equal(connections(b).outgoing[0].auth, "dialback");
      assert.deepEqual(connections(a).incoming.flatMap((s) => s.pairs), [
        { from: "b.test", to: "a.test", auth: "dialback" },
      ]);
    })
  ));

Deno.test("s2s certificates: with s2s_secure_auth, a peer without a valid certificate is refused both ways", () =>
  withPki((pki) =>
    twoServers(
      pki,
      { bCert: "b.test-untrusted", a: { s2s_secure_auth: true } },
      async (a, _b, alice, bob) => {
        // Outgoing: a does not take b's certificate, and says so to alice.
        await bounced(alice, "bob@b.test", "remote-server-not-found");
        assert.equal(connections(a).outgoing.length, 0);
        // Incoming: b's dialback is refused; bob's message comes back, with why.
        const err = await bounced(bob, "alice@a.test", "remote-server-not-found");
        assert.match(err, /A valid certificate for b.test is required by a.test/);
        assert.equal(connections(a).incoming.flatMap((s) => s.pairs).length, 0);
      },
    )
  ));

Deno.test("s2s certificates: s2s_insecure_domains lets a listed peer use dialback despite s2s_secure_auth", () =>
  withPki((pki) =>
    twoServers(
      pki,
      {
        bCert: "b.test-untrusted",
        a: { s2s_secure_auth: true, s2s_insecure_domains: ["b.test"] },
      },
      async (a, _b, alice, bob) => {
        await chatBothWays(alice, bob);
        assert.equal(connections(a).outgoing[0].certificate, "issuer not trusted");
        assert.deepEqual(connections(a).incoming.flatMap((s) => s.pairs), [
          { from: "b.test", to: "a.test", auth: "dialback" },
        ]);
      },
    )
  ));

Deno.test("s2s certificates: s2s_secure_domains asks a valid certificate of a listed peer only", () =>
  withPki((pki) =>
    twoServers(
      pki,
      { bCert: "b.test-untrusted", a: { s2s_secure_domains: ["b.test"] } },
      async (_a, _b, alice) => {
        await bounced(alice, "bob@b.test", "remote-server-not-found");
      },
    )
  ));

Deno.test("s2s direct TLS: a server published by _xmpps-server is reached with TLS from the first byte", () =>
  withPki((pki) =>
    twoServers(pki, { bDirectTls: true }, async (a, b, alice, bob) => {
      await chatBothWays(alice, bob);
      const out = connections(a).outgoing.find((r) => r.remote === "b.test")!;
      assert.equal(out.auth, "SASL EXTERNAL");
      assert.ok(out.secure);
      // b's direct TLS listener took a's stream (its plain port is not published).
      assert.equal(connections(b).incoming.length, 1);
      assert.ok(connections(b).incoming[0].secure);
    })
  ));

Deno.test("s2s certificates: an unreadable s2s_cafile is a clear configuration error", async () => {
  await assert.rejects(
    startTestServer({ modules_enabled: ["s2s"], s2s_cafile: "/nonexistent/ca.pem" }),
    /config option "s2s_cafile": file \/nonexistent\/ca\.pem does not exist/,
  );
});
