/**
 * Federation with Debian's Prosody (the oracle) on loopback: Cadence serves
 * c.test on 127.0.0.2, Prosody p.test on 127.0.0.3, each on port 5269.
 * Cadence finds p.test through a loopback DNS server; Prosody finds c.test
 * through a hosts file its resolver (libunbound) reads. Streams are
 * encrypted with STARTTLS (required on both sides; self-signed
 * certificates, so dialback authenticates), or in the clear when both
 * allow it, or authenticated by certificates from a CA both trust (SASL
 * EXTERNAL, s2s_secure_auth on both sides); messages, iqs and presence
 * subscriptions cross both ways, and Prosody restarts mid-conversation.
 */
import assert from "node:assert/strict";
import { freePort, startTestServer } from "../helpers/server.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { listening } from "../helpers/net.ts";
import { issueCert, makeCa } from "../helpers/certs.ts";

const PROSODY = "/usr/bin/prosody";

async function prosodyReady(): Promise<boolean> {
  const ok = await Deno.stat(PROSODY).then(() => true, () => false);
  if (ok) return true;
  if (Deno.env.get("CI")) throw new Error("prosody is missing in CI");
  console.warn("skipped: prosody is not installed");
  return false;
}

/** Logs in to Prosody's c2s (PLAIN on plain TCP) and binds. */
async function prosodyLogin(port: number, user: string): Promise<RawClient> {
  const c = await RawClient.connect(port, "127.0.0.3");
  const open = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " +
    "xmlns:stream='http://etherx.jabber.org/streams' to='p.test' version='1.0'>";
  c.send(open);
  await c.waitFor(/<\/stream:features>/);
  c.clear();
  c.send(
    `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
      btoa(`\0${user}\0pw`)
    }</auth>`,
  );
  await c.waitFor(/<success/);
  c.clear();
  c.send(open);
  await c.waitFor(/<\/stream:features>/);
  c.send(
    "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>",
  );
  await c.waitFor(/<jid>/);
  c.clear();
  c.send("<presence/>");
  return c;
}

/**
 * "dialback": STARTTLS with self-signed certificates (dialback authenticates), or "plain"
 * (no TLS either way), or "certs": certificates from a test CA both sides trust, with
 * s2s_secure_auth on both (SASL EXTERNAL authenticates).
 */
type Mode = "dialback" | "plain" | "certs";

async function federateWithProsody(mode: Mode) {
  if (!await prosodyReady()) return;
  const tls = mode !== "plain";
  const dir = await Deno.makeTempDir({ prefix: "cadence-prosody-s2s-" });
  let pCert = `${dir}/p.crt`, pKey = `${dir}/p.key`, cadenceSsl = {}, cafile = "";
  if (mode === "dialback") {
    // Prosody's certificate for p.test (self-signed: dialback authenticates, as s2s_secure_auth = false).
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=p.test",
        "-addext",
        "subjectAltName=DNS:p.test",
        "-keyout",
        pKey,
        "-out",
        pCert,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
  } else if (mode === "certs") {
    const ca = await makeCa(dir, "ca");
    const p = await issueCert(dir, ca, "p.test", { dns: ["p.test"] });
    const c = await issueCert(dir, ca, "c.test", { dns: ["c.test"] });
    [pCert, pKey, cafile] = [p.cert, p.key, ca.cert];
    cadenceSsl = { ssl: { certificate: c.cert, key: c.key } };
  }
  const prosodyC2s = await freePort();
  await Deno.writeTextFile(`${dir}/hosts`, "127.0.0.2 c.test\n127.0.0.3 p.test\n");
  await Deno.writeTextFile(
    `${dir}/prosody.cfg.lua`,
    [
      "run_as_root = true",
      `pidfile = "${dir}/prosody.pid"`,
      `data_path = "${dir}/data"`,
      `certificates = "${dir}/certs"`,
      'interfaces = { "127.0.0.3" }',
      `c2s_ports = { ${prosodyC2s} }`,
      "c2s_direct_tls_ports = { }",
      "s2s_ports = { 5269 }",
      "s2s_direct_tls_ports = { }",
      "http_ports = { }",
      "https_ports = { }",
      "component_ports = { }",
      `log = { { levels = { min = "debug" }, to = "file", filename = "${dir}/prosody.log" } }`,
      'authentication = "internal_plain"',
      "c2s_require_encryption = false",
      "allow_unencrypted_plain_auth = true",
      `s2s_require_encryption = ${tls}`,
      `s2s_secure_auth = ${mode === "certs"}`,
      ...(tls
        ? [
          `ssl = { certificate = "${pCert}", key = "${pKey}"${
            cafile ? `, cafile = "${cafile}"` : ""
          } }`,
        ]
        : []),
      `unbound = { hoststxt = "${dir}/hosts" }`,
      `modules_enabled = { "roster", "saslauth", "disco", "ping", "version", "dialback"${
        tls ? ', "tls"' : ""
      } }`,
      'VirtualHost "p.test"',
    ].join("\n"),
  );
  await Deno.mkdir(`${dir}/data`);
  const reg = await new Deno.Command("/usr/bin/prosodyctl", {
    args: ["--config", `${dir}/prosody.cfg.lua`, "register", "pat", "p.test", "pw"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(reg.success, new TextDecoder().decode(reg.stderr));
  const startProsody = () =>
    new Deno.Command(PROSODY, {
      args: ["--config", `${dir}/prosody.cfg.lua`, "-F"],
      stdout: "null",
      stderr: "null",
    }).spawn();
  let prosody = startProsody();
  const stopProsody = async () => {
    try {
      prosody.kill("SIGTERM");
    } catch { /* gone already */ }
    const killer = setTimeout(() => {
      try {
        prosody.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await prosody.status;
    clearTimeout(killer);
  };
  const dns = await startDnsServer({ "p.test": [{ a: "127.0.0.3" }] });
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
    s2s_require_encryption: tls,
    modules_enabled: ["roster", "saslauth", "disco", "ping", "version", "s2s"],
    virtual_hosts: { "c.test": cadenceSsl },
    ...(mode === "certs" ? { s2s_cafile: cafile, s2s_secure_auth: true } : {}),
    s2s_ports: [5269],
    s2s_interfaces: ["127.0.0.2"],
    s2s_dns_server: `127.0.0.1:${dns.nameServer.port}`,
  });
  const clients: RawClient[] = [];
  try {
    await listening("127.0.0.3", prosodyC2s);
    await listening("127.0.0.3", 5269);
    await t.server.users("c.test")!.createUser("cy", "pw");
    const cy = await RawClient.connect(t.port);
    clients.push(cy);
    await cy.login("cy", "pw", "r", "c.test");
    cy.send("<presence/>");
    const pat = await prosodyLogin(prosodyC2s, "pat");
    clients.push(pat);

    // Cadence → Prosody: Cadence's route authenticates by dialback (Prosody verifies with us).
    cy.send("<message to='pat@p.test' type='chat' id='m1'><body>hi prosody</body></message>");
    const atPat = await pat.waitFor(/<message [^>]*>[^]*?hi prosody[^]*?<\/message>/, 15_000);
    assert.match(atPat[0], /from=['"]cy@c.test\/r/);
    // Prosody → Cadence: Prosody's route, verified by Cadence with Prosody.
    pat.send("<message to='cy@c.test' type='chat' id='m2'><body>hi cadence</body></message>");
    const atCy = await cy.waitFor(/<message [^>]*>[^]*?hi cadence[^]*?<\/message>/, 15_000);
    assert.match(atCy[0], /from="pat@p.test\/r/);
    // An iq to Prosody's server, answered across.
    cy.send("<iq type='get' id='v1' to='p.test'><query xmlns='jabber:iq:version'/></iq>");
    const v = await cy.waitFor(/<iq [^>]*id="v1"[^>]*>[^]*?<\/iq>/, 15_000);
    assert.match(v[0], /<name>Prosody<\/name>/);
    // Presence subscriptions both ways, then presence flows across (attributes in any order).
    const presence = (...attrs: string[]) =>
      new RegExp(`<presence${attrs.map((a) => `(?=[^>]*${a})`).join("")}[^>]*>`);
    cy.send("<presence to='pat@p.test' type='subscribe'/>");
    await pat.waitFor(presence(`type=['"]subscribe['"]`), 15_000);
    pat.send("<presence to='cy@c.test' type='subscribed'/>");
    await cy.waitFor(presence(`type="subscribed"`, `from="pat@p.test"`), 15_000);
    await cy.waitFor(/<presence (?![^>]*type=)[^>]*from="pat@p.test\/r"/, 15_000);
    pat.send("<presence to='cy@c.test' type='subscribe'/>");
    await cy.waitFor(presence(`from="pat@p.test"`, `type="subscribe"`), 15_000);
    pat.clear();
    cy.send("<presence to='pat@p.test' type='subscribed'/>");
    await pat.waitFor(presence(`from=['"]cy@c.test/r['"]`), 15_000);
    // A change of presence reaches the contact on the other server.
    cy.clear();
    pat.send("<presence><show>away</show></presence>");
    await cy.waitFor(/<presence [^>]*from="pat@p.test\/r"[^>]*>[^]*?<show>away<\/show>/, 15_000);
    // And Prosody's user pings Cadence's server.
    pat.send("<iq type='get' id='p1' to='c.test'><ping xmlns='urn:xmpp:ping'/></iq>");
    const pong = await pat.waitFor(/<iq [^>]*id=['"]p1['"][^>]*\/?>/, 15_000);
    assert.match(pong[0], /type=['"]result['"]/);

    // How each direction authenticated, as Cadence saw it.
    const s2s = t.server.modules.get("*", "s2s")!.exports.connections as () => {
      outgoing: { remote: string; auth?: string; certificate?: string; secure: boolean }[];
      incoming: { secure: boolean; pairs: { from: string; to: string; auth: string }[] }[];
    };
    const out = s2s().outgoing.find((r) => r.remote === "p.test")!;
    const inPairs = s2s().incoming.flatMap((i) => i.pairs.map((p) => ({ ...p, secure: i.secure })));
    const how = mode === "certs" ? "SASL EXTERNAL" : "dialback";
    assert.equal(out.auth, how);
    assert.equal(out.secure, tls);
    if (mode === "certs") assert.equal(out.certificate, "valid");
    assert.deepEqual(inPairs, [{ from: "p.test", to: "c.test", auth: how, secure: tls }]);

    if (mode === "dialback") {
      // Prosody goes away mid-conversation: a message meanwhile comes back to its sender...
      await stopProsody();
      cy.clear();
      cy.send("<message to='pat@p.test' type='chat' id='m3'><body>are you there?</body></message>");
      const bounce = await cy.waitFor(/<message [^>]*id="m3"[^>]*>[^]*?<\/message>/, 15_000);
      assert.match(bounce[0], /type="error"/);
      assert.match(bounce[0], /<remote-server-not-found /);
      // ... and once it is back, messages cross again, both ways, on new streams.
      prosody = startProsody();
      await listening("127.0.0.3", prosodyC2s);
      await listening("127.0.0.3", 5269);
      const pat2 = await prosodyLogin(prosodyC2s, "pat");
      clients.push(pat2);
      cy.send("<message to='pat@p.test' type='chat' id='m4'><body>welcome back</body></message>");
      await pat2.waitFor(/<message [^>]*>[^]*?welcome back[^]*?<\/message>/, 15_000);
      pat2.send("<message to='cy@c.test' type='chat' id='m5'><body>I am back</body></message>");
      await cy.waitFor(/<message [^>]*from="pat@p.test\/r"[^>]*>[^]*?I am back/, 15_000);
    }
  } catch (e) {
    // What Prosody saw, to tell whose side failed.
    const log = await Deno.readTextFile(`${dir}/prosody.log`).catch(() => "(no log)");
    console.error(`prosody.log (last lines):\n${log.split("\n").slice(-40).join("\n")}`);
    throw e;
  } finally {
    for (const c of clients) c.close();
    // Prosody first (its streams to Cadence close with it), killed if it lingers.
    await stopProsody();
    await t.stop();
    dns.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("s2s with Prosody over STARTTLS: encryption required both ways, dialback; messages, iqs, subscriptions and presence cross; Prosody restarts mid-conversation", () =>
  federateWithProsody("dialback"));

Deno.test("s2s with Prosody without TLS (both allow it): the same in the clear", () =>
  federateWithProsody("plain"));

Deno.test("s2s with Prosody, certificates from a CA both trust and s2s_secure_auth on both: SASL EXTERNAL both ways", () =>
  federateWithProsody("certs"));
