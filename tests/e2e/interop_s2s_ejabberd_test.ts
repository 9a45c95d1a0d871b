/**
 * Federation with Debian's ejabberd (the oracle) on loopback: Cadence serves
 * c.test on 127.0.0.5, ejabberd e.test on 127.0.0.4, each on port 5269
 * (not 127.0.0.2/.3, which the Prosody test binds: `deno task test` runs
 * files in parallel). Cadence finds e.test through a loopback DNS server
 * (an A record); ejabberd asks the same DNS server (its ERL_INETRC) for
 * c.test's SRV record, whose target is an IP literal (see
 * `tests/helpers/ejabberd.ts`). Streams are in the clear with dialback, or
 * encrypted with STARTTLS required on both sides (self-signed certificates,
 * so dialback authenticates), or authenticated by certificates from a test
 * CA that both trust (SASL EXTERNAL both ways; Cadence with
 * `s2s_secure_auth`, ejabberd without `mod_s2s_dialback`); messages, iqs
 * and presence subscriptions cross both ways. Each side's view of how each
 * direction authenticated is checked: Cadence's `connections()` and
 * ejabberd's log. The certificates name only the domains (DNS SANs), while
 * ejabberd reaches c.test at an IP literal (its SRV target): each side
 * verifies the other's domain.
 */
import assert from "node:assert/strict";
import { freePort, startTestServer } from "../helpers/server.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { listening } from "../helpers/net.ts";
import { type Ejabberd, ejabberdReady, ejabberdSrv, startEjabberd } from "../helpers/ejabberd.ts";
import { issueCert, makeCa } from "../helpers/certs.ts";
import { setupLogging, stopLogging } from "../../core/log.ts";

const CADENCE_IP = "127.0.0.5";
const EJABBERD_IP = "127.0.0.4";

/** Logs in to ejabberd's c2s (PLAIN on plain TCP), binds and sends initial presence. */
async function ejabberdLogin(port: number, user: string): Promise<RawClient> {
  const c = await RawClient.connect(port, EJABBERD_IP);
  await c.login(user, "pw", "r", "e.test");
  c.send("<presence/>");
  return c;
}

/** A self-signed certificate for `domain`: [certificate, key] files. */
async function selfSigned(dir: string, domain: string): Promise<[string, string]> {
  const [crt, key] = [`${dir}/${domain}.crt`, `${dir}/${domain}.key`];
  const out = await new Deno.Command("openssl", {
    args: [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"],
      ...["-subj", `/CN=${domain}`, "-addext", `subjectAltName=DNS:${domain}`],
      ...["-keyout", key, "-out", crt],
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return [crt, key];
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

/**
 * "plain": in the clear, dialback. "tls": STARTTLS required, self-signed
 * certificates, dialback. "certs": STARTTLS required, certificates from a
 * CA both trust, SASL EXTERNAL both ways and nothing else.
 */
type Mode = "plain" | "tls" | "certs";

async function federateWithEjabberd(mode: Mode) {
  if (!await ejabberdReady()) return;
  const tls = mode !== "plain";
  const dir = await Deno.makeTempDir({ prefix: "cadence-ejabberd-s2s-" });
  const cadenceLog = `${dir}/cadence.log`;
  await setupLogging({ level: "debug", file: cadenceLog });
  const dns = await startDnsServer({
    "e.test": [{ a: EJABBERD_IP }],
    ...ejabberdSrv("c.test", CADENCE_IP),
  });
  let ejabberd: Ejabberd | undefined;
  let t: Awaited<ReturnType<typeof startTestServer>> | undefined;
  const clients: RawClient[] = [];
  let failure: unknown;
  try {
    const c2sPort = await freePort();
    // Certificates: self-signed for e.test ("tls"), or both issued by a test CA ("certs").
    const ca = mode === "certs" ? await makeCa(dir, "root") : undefined;
    const [eTest, cTest] = ca
      ? [
        await issueCert(dir, ca, "e.test", { dns: ["e.test"] }),
        await issueCert(dir, ca, "c.test", { dns: ["c.test"] }),
      ]
      : [];
    ejabberd = await startEjabberd({
      dir,
      host: "e.test",
      address: EJABBERD_IP,
      c2sPort,
      httpPort: await freePort(),
      dnsPort: dns.nameServer.port,
      starttls: tls ? "required" : false,
      certfiles: eTest
        ? [eTest.cert, eTest.key]
        : tls
        ? await selfSigned(dir, "e.test")
        : undefined,
      cafile: ca?.cert,
      dialback: mode !== "certs",
    });
    t = await startTestServer({
      authentication: "internal_plain",
      c2s_require_encryption: false,
      allow_unencrypted_plain_auth: true,
      s2s_require_encryption: tls,
      modules_enabled: ["roster", "saslauth", "disco", "ping", "version", "s2s"],
      virtual_hosts: {
        "c.test": cTest ? { ssl: { certificate: cTest.cert, key: cTest.key } } : {},
      },
      ...(ca ? { s2s_cafile: ca.cert, s2s_secure_auth: true } : {}),
      s2s_ports: [5269],
      s2s_interfaces: [CADENCE_IP],
      s2s_dns_server: `127.0.0.1:${dns.nameServer.port}`,
    });
    await listening(EJABBERD_IP, c2sPort);
    await listening(EJABBERD_IP, 5269);
    await ejabberd.register("ed", "pw");
    await t.server.users("c.test")!.createUser("cy", "pw");
    const cy = await RawClient.connect(t.port);
    clients.push(cy);
    await cy.login("cy", "pw", "r", "c.test");
    cy.send("<presence/>");
    const ed = await ejabberdLogin(c2sPort, "ed");
    clients.push(ed);

    // Cadence → ejabberd: Cadence's route authenticates by dialback (ejabberd verifies with us).
    cy.send("<message to='ed@e.test' type='chat' id='m1'><body>hi ejabberd</body></message>");
    const atEd = await ed.waitFor(/<message [^>]*>[^]*?hi ejabberd[^]*?<\/message>/, 15_000);
    assert.match(atEd[0], /from=['"]cy@c.test\/r/);
    // ejabberd → Cadence: ejabberd's route (found by SRV), verified by Cadence with ejabberd.
    ed.send("<message to='cy@c.test' type='chat' id='m2'><body>hi cadence</body></message>");
    const atCy = await cy.waitFor(/<message [^>]*>[^]*?hi cadence[^]*?<\/message>/, 15_000);
    assert.match(atCy[0], /from="ed@e.test\/r/);
    // iqs to the other server, answered across, both ways.
    cy.send("<iq type='get' id='v1' to='e.test'><query xmlns='jabber:iq:version'/></iq>");
    const v1 = await cy.waitFor(/<iq [^>]*id="v1"[^>]*>[^]*?<\/iq>/, 15_000);
    assert.match(v1[0], /type="result"/);
    assert.match(v1[0], /<name>ejabberd<\/name>/);
    ed.send("<iq type='get' id='v2' to='c.test'><query xmlns='jabber:iq:version'/></iq>");
    const v2 = await ed.waitFor(/<iq [^>]*id=['"]v2['"][^>]*>[^]*?<\/iq>/, 15_000);
    assert.match(v2[0], /type=['"]result['"]/);
    assert.match(v2[0], /<name>Cadence<\/name>/);
    // Presence subscriptions both ways, then presence flows across (attributes in any order).
    const presence = (...attrs: string[]) =>
      new RegExp(`<presence${attrs.map((a) => `(?=[^>]*${a})`).join("")}[^>]*>`);
    cy.send("<presence to='ed@e.test' type='subscribe'/>");
    await ed.waitFor(presence(`type=['"]subscribe['"]`, `from=['"]cy@c.test['"]`), 15_000);
    ed.send("<presence to='cy@c.test' type='subscribed'/>");
    await cy.waitFor(presence(`type="subscribed"`, `from="ed@e.test"`), 15_000);
    await cy.waitFor(/<presence (?![^>]*type=)[^>]*from="ed@e.test\/r"/, 15_000);
    ed.send("<presence to='cy@c.test' type='subscribe'/>");
    await cy.waitFor(presence(`from="ed@e.test"`, `type="subscribe"`), 15_000);
    ed.clear();
    cy.send("<presence to='ed@e.test' type='subscribed'/>");
    await ed.waitFor(presence(`from=['"]cy@c.test/r['"]`), 15_000);
    // Changes of presence reach the contact on the other server, both ways.
    cy.clear();
    ed.send("<presence><show>away</show></presence>");
    await cy.waitFor(/<presence [^>]*from="ed@e.test\/r"[^>]*>[^]*?<show>away<\/show>/, 15_000);
    ed.clear();
    cy.send("<presence><show>dnd</show></presence>");
    await ed.waitFor(
      /<presence [^>]*from=['"]cy@c.test\/r['"][^>]*>[^]*?<show>dnd<\/show>/,
      15_000,
    );
    // Both rosters hold the other with subscription both.
    cy.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
    const r1 = await cy.waitFor(/<iq [^>]*id="r1"[^>]*>[^]*?<\/iq>/, 15_000);
    assert.match(r1[0], /<item (?=[^>]*jid="ed@e.test")(?=[^>]*subscription="both")/);
    ed.send("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>");
    const r2 = await ed.waitFor(/<iq [^>]*id=['"]r2['"][^>]*>[^]*?<\/iq>/, 15_000);
    assert.match(r2[0], /<item (?=[^>]*jid=['"]cy@c.test['"])(?=[^>]*subscription=['"]both['"])/);
    // Cadence's view: its route to e.test and ejabberd's stream to it, each authenticated
    // by SASL EXTERNAL (certificates) or dialback, encrypted or not as configured.
    const auth = mode === "certs" ? "SASL EXTERNAL" : "dialback";
    const seenHere = (t.server.modules.get("*", "s2s")!.exports.connections as () => Connections)();
    const route = seenHere.outgoing.find((r) => r.local === "c.test" && r.remote === "e.test");
    assert.ok(route, `no route c.test -> e.test in ${JSON.stringify(seenHere)}`);
    assert.equal(route.auth, auth, JSON.stringify(route));
    assert.equal(route.secure, tls, JSON.stringify(route));
    if (mode === "certs") assert.equal(route.certificate, "valid", JSON.stringify(route));
    const inbound = seenHere.incoming.filter((s) =>
      s.pairs.some((p) => p.from === "e.test" && p.to === "c.test")
    );
    assert.equal(inbound.length, 1, `incoming from e.test: ${JSON.stringify(seenHere.incoming)}`);
    assert.equal(inbound[0].secure, tls, JSON.stringify(inbound[0]));
    assert.deepEqual(inbound[0].pairs, [{ from: "e.test", to: "c.test", auth }]);
    // ejabberd's view (its log, flushed when it stops): both routes authenticated by
    // dialback or by SASL EXTERNAL, over TLS or plain TCP as configured.
    await ejabberd.stop();
    const seen = await Deno.readTextFile(ejabberd.log);
    const via = tls ? "tls" : "tcp";
    const mech = mode === "certs" ? "EXTERNAL" : "dialback";
    for (const way of ["outbound", "inbound"]) {
      const pair = way === "outbound" ? "e.test -> c.test" : "c.test -> e.test";
      const line = `) Accepted ${way} s2s ${mech} authentication ${pair} `;
      assert.ok(
        seen.split("\n").some((l) => l.includes(`(${via}|`) && l.includes(line)),
        `ejabberd's log has no "(${via}|…${line}"`,
      );
    }
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    for (const c of clients) c.close();
    // ejabberd first (its streams to Cadence close with it; its log is flushed), killed if it lingers.
    await ejabberd?.stop();
    if (failure) {
      // What each side saw, to tell whose side failed.
      if (ejabberd) console.error(`ejabberd.log (last lines):\n${await ejabberd.logTail(60)}`);
      const log = await Deno.readTextFile(cadenceLog).catch(() => "(no log)");
      const s2s = log.split("\n").filter((l) => /s2s|dialback/i.test(l));
      console.error(`cadence log, s2s lines (last):\n${s2s.slice(-40).join("\n")}`);
    }
    await t?.stop();
    dns.close();
    await stopLogging();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("s2s with ejabberd without TLS (both allow it): dialback in the clear; messages, iqs, subscriptions and presence cross", () =>
  federateWithEjabberd("plain"));

Deno.test("s2s with ejabberd over STARTTLS: encryption required both ways, dialback; the same encrypted", () =>
  federateWithEjabberd("tls"));

Deno.test("s2s with ejabberd by certificates from a CA both trust: STARTTLS, SASL EXTERNAL both ways (Cadence with s2s_secure_auth, ejabberd without dialback); the same", () =>
  federateWithEjabberd("certs"));
