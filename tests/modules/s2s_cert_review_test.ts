/**
 * Review of certificate authentication in modules/s2s (certs.ts, incoming.ts,
 * outgoing.ts). `b.test` is a Cadence server; `evil.test` is a scripted fake
 * remote server on loopback, or a raw peer playing a remote server with a
 * client certificate of its choosing.
 *
 * The tests named without "(guard)" failed against 4d8ae85 (each comment says what was
 * wrong, since fixed); the guards check what already held and must keep holding.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { connect as tlsConnect, createSecureContext, TLSSocket } from "node:tls";
import { freePort, startTestServer, type TestServer } from "../helpers/server.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { HEADER, sleep } from "../helpers/s2s_peer.ts";
import { issueCert, makeCa, type TestCert } from "../helpers/certs.ts";
import { verifyChain } from "../../modules/s2s/certs.ts";

const TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls";
const SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl";
const BASE = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};
const REPLY_HEADER = (id: string) =>
  "<?xml version='1.0'?><stream:stream xmlns='jabber:server' " +
  "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' " +
  `id='${id}' version='1.0'>`;
const DIALBACK_FEATURES = "<stream:features><dialback xmlns='urn:xmpp:features:dialback'>" +
  "<errors/></dialback></stream:features>";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cadence-s2s-cert-review-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A fake remote server: `onConn` gets each accepted socket; everything it received is kept. */
async function fakeRemote(onConn: (s: Socket, seen: { text: string }) => void) {
  const sockets = new Set<Socket>();
  const seen = { text: "" };
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    onConn(s, seen);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  return {
    port: typeof addr === "object" && addr ? addr.port : 0,
    seen,
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
  bob: RawClient;
}

/** b.test (Cadence, with bob logged in) and evil.test at `evilPort`, one DNS. */
async function world(
  evilPort: number,
  extra: Record<string, unknown>,
  fn: (w: World) => Promise<void>,
) {
  const s2sPort = await freePort();
  const dns = await startDnsServer({
    "_xmpp-server._tcp.b.test": [{ srv: [0, 0, s2sPort, "b.test"] }],
    "_xmpp-server._tcp.evil.test": [{ srv: [0, 0, evilPort, "evil.test"] }],
    "b.test": [{ a: "127.0.0.1" }],
    "evil.test": [{ a: "127.0.0.1" }],
  });
  const b = await startTestServer({
    ...BASE,
    s2s_dns_server: `127.0.0.1:${dns.nameServer.port}`,
    modules_enabled: ["roster", "saslauth", "disco", "ping", "s2s"],
    virtual_hosts: { "b.test": {} },
    s2s_ports: [s2sPort],
    ...extra,
  });
  let bob: RawClient | undefined;
  try {
    await b.server.users("b.test")!.createUser("bob", "pw");
    bob = await RawClient.connect(b.port);
    await bob.login("bob", "pw", "r", "b.test");
    bob.send("<presence/>");
    await fn({ b, s2sPort, dns, bob });
  } finally {
    bob?.close();
    await b.stop();
    dns.close();
  }
}

// BUG 1 (high, with s2s_require_encryption = false): outgoing.ts judges the remote certificate
// only in tlsUp() (outgoing.ts:188-204), which runs only when TLS happens. When the remote (or
// anyone on the path, stripping <starttls/>) offers no STARTTLS and encryption is not
// required, the features handler (outgoing.ts:251-266) goes straight to dialback, and a
// <db:result type='valid'/> makes the route ready: a domain listed in s2s_secure_domains (or
// any domain under s2s_secure_auth) receives our stanzas in the clear, with no certificate at
// all. Prosody's check_auth_policy refuses an unencrypted / unverified session for a secure
// domain (and secure auth implies required encryption). The incoming side is right
// (incoming.ts:296-303 refuses, certFor gives "no TLS").
// Fix: in the features handler, `if (!conn.secure && (ctx.requireEncryption ||
// ctx.secureAuthFor(r.local, r.remote))) return fail(...)`; better, check the policy in
// ready() too (verdict stored at tlsUp; not secure or not valid → fail).
Deno.test("s2s cert review: s2s_secure_domains is not bypassed by a remote that offers no TLS", async () => {
  const evil = await fakeRemote((s, seen) => {
    s.on("data", (d) => {
      const chunk = d.toString();
      seen.text += chunk;
      if (chunk.includes("<stream:stream")) s.write(REPLY_HEADER("p1") + DIALBACK_FEATURES);
      if (chunk.includes("<db:result")) {
        s.write("<db:result from='evil.test' to='b.test' type='valid'/>");
      }
    });
  });
  try {
    await world(
      evil.port,
      { s2s_require_encryption: false, s2s_secure_domains: ["evil.test"] },
      async ({ bob }) => {
        bob.send(
          "<message to='mallory@evil.test' type='chat' id='s1'><body>secret</body></message>",
        );
        const err = await bob.waitFor(/<message [^>]*id="s1"[^>]*>[^]*?<\/message>/, 10_000)
          .catch(() => undefined);
        assert.doesNotMatch(evil.seen.text, /secret/, "sent in the clear to a secure domain");
        assert.ok(err, "the sender is told");
        assert.match(err![0], /type="error"/);
      },
    );
  } finally {
    await evil.close();
  }
});

// Race check: the remote writes its stream header, features and <db:result type='valid'/>
// as soon as TLS is up (0.5-RTT data in TLS 1.3), before our stream header. onData
// (outgoing.ts:336) feeds the parser before tlsUp() has judged the certificate.
Deno.test("s2s cert review: nothing goes to a secure domain whose certificate is bad, even if it talks first", () =>
  withDir(async (dir) => {
    const other = await makeCa(dir, "other");
    const evilCert = await issueCert(dir, other, "evil.test", { dns: ["evil.test"] });
    const trusted = await makeCa(dir, "trusted");
    const ctx = createSecureContext({
      cert: Deno.readTextFileSync(evilCert.cert),
      key: Deno.readTextFileSync(evilCert.key),
    });
    const evil = await fakeRemote((s, seen) => {
      const onPlain = (d: Uint8Array) => {
        const chunk = d.toString();
        seen.text += chunk;
        if (chunk.includes("<stream:stream")) {
          s.write(
            REPLY_HEADER("p1") + `<stream:features><starttls xmlns='${TLS_NS}'/></stream:features>`,
          );
        } else if (chunk.includes("<starttls")) {
          s.write(`<proceed xmlns='${TLS_NS}'/>`);
          s.removeListener("data", onPlain);
          const t = new TLSSocket(s, { isServer: true, secureContext: ctx });
          t.on("error", () => {});
          t.on("data", (x) => seen.text += x.toString());
          // Written at once: goes out right after the handshake, before the route's header.
          t.write(
            REPLY_HEADER("t1") + DIALBACK_FEATURES +
              "<db:result from='evil.test' to='b.test' type='valid'/>",
          );
        }
      };
      s.on("data", onPlain);
    });
    try {
      await world(
        evil.port,
        {
          s2s_require_encryption: true,
          s2s_secure_domains: ["evil.test"],
          s2s_cafile: trusted.cert,
        },
        async ({ bob }) => {
          bob.send(
            "<message to='mallory@evil.test' type='chat' id='s2'><body>secret</body></message>",
          );
          await bob.waitFor(/<message [^>]*id="s2"[^>]*>[^]*?<\/message>/, 10_000).catch(() => {});
          await sleep(300);
          assert.doesNotMatch(
            evil.seen.text,
            /secret/,
            "sent to a server whose certificate is bad",
          );
        },
      );
    } finally {
      await evil.close();
    }
  }));

/** A raw remote server for `from` talking to b.test over STARTTLS with `cert` as its client certificate. */
async function tlsPeer(port: number, from: string, cert: TestCert, beforeTls = "") {
  let text = "";
  const plain: Socket = connect(port, "127.0.0.1");
  plain.on("error", () => {});
  plain.on("data", (d) => text += d.toString());
  const until = async (re: RegExp, ms = 10_000) => {
    for (let t = 0; t < ms && !re.test(text); t += 20) await sleep(20);
    return re.test(text);
  };
  plain.write(HEADER(from, "b.test"));
  assert.ok(await until(/<\/stream:features>/), "features");
  if (beforeTls) {
    plain.write(beforeTls);
    await sleep(300);
  }
  const mark = text.length;
  plain.write(`<starttls xmlns='${TLS_NS}'/>`);
  assert.ok(await until(/<proceed/), `proceed: ${text.slice(mark)}`);
  plain.removeAllListeners("data");
  text = "";
  const tls = tlsConnect({
    socket: plain,
    servername: "b.test",
    rejectUnauthorized: false,
    cert: Deno.readTextFileSync(cert.cert),
    key: Deno.readTextFileSync(cert.key),
  });
  tls.on("error", () => {});
  tls.on("data", (d) => text += d.toString());
  await new Promise<void>((r) => tls.once("secureConnect", () => r()));
  tls.write(HEADER(from, "b.test"));
  assert.ok(await until(/<\/stream:features>|<stream:features\/>/), "features after TLS");
  return { text: () => text, send: (s: string) => tls.write(s), until, close: () => tls.destroy() };
}

// BUG 3 (low; the peer only hurts itself, but it is a wrong cache): incoming.ts:83-92 caches
// the verdict "no TLS" computed for an <auth/> sent before STARTTLS (allowed with
// s2s_require_encryption = false, incoming.ts:188/253) and never forgets it: after STARTTLS
// with a certificate valid for the domain, SASL EXTERNAL is no longer offered and the peer's
// dialback is not answered by its certificate (under s2s_secure_auth it is refused outright).
// Fix: clear `verdicts` when TLS starts (in startTls()), or never cache when !conn.secure.
Deno.test("s2s cert review: an <auth/> tried before TLS does not spoil the certificate for after", () =>
  withDir(async (dir) => {
    const ca = await makeCa(dir, "root");
    const pCert = await issueCert(dir, ca, "p.test", { dns: ["p.test"] });
    await world(
      1,
      { s2s_require_encryption: false, s2s_cafile: ca.cert },
      async ({ s2sPort }) => {
        // Control: straight to STARTTLS, EXTERNAL is offered.
        const good = await tlsPeer(s2sPort, "p.test", pCert);
        assert.match(good.text(), /<mechanism>EXTERNAL<\/mechanism>/, "control");
        good.close();
        const p = await tlsPeer(
          s2sPort,
          "p.test",
          pCert,
          `<auth xmlns='${SASL_NS}' mechanism='EXTERNAL'>=</auth>`,
        );
        try {
          assert.match(
            p.text(),
            /<mechanism>EXTERNAL<\/mechanism>/,
            `EXTERNAL offered after TLS: ${p.text()}`,
          );
        } finally {
          p.close();
        }
      },
    );
  }));

/** openssl, in `dir`. */
async function openssl(dir: string, ...args: string[]) {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}
async function issue(dir: string, name: string, issuer: string, ext: string) {
  await openssl(
    dir,
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
  );
  await Deno.writeTextFile(`${dir}/${name}.ext`, ext);
  await openssl(
    dir,
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${issuer}.crt`,
    "-CAkey",
    `${issuer}.key`,
    "-CAcreateserial",
    "-days",
    "30",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.crt`,
  );
}

// BUG 2 (low-medium): verifyChain (certs.ts:153) takes any peer-sent certificate with CA:TRUE
// as an issuer, ignoring basicConstraints pathLenConstraint. A CA constrained with pathlen:0
// (as most WebPKI issuing intermediates are, e.g. Let's Encrypt's) can thus be extended by a
// sub-CA; OpenSSL (and so Prosody) refuses with "path length constraint exceeded". Key usage
// is checked (Deno's checkIssued refuses an issuer without keyCertSign), EKU is not (Prosody
// ignores purpose too). Fix: while walking up, count the CA certificates below each issuer and
// refuse when it exceeds that issuer's pathlen (read basicConstraints' INTEGER with der.ts; the
// anchor's own pathlen applies too).
Deno.test("s2s cert review: verifyChain honours pathlen:0 on an intermediate", () =>
  withDir(async (dir) => {
    const root = await makeCa(dir, "root");
    await issue(
      dir,
      "pl0",
      "root",
      "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n",
    );
    await issue(
      dir,
      "sub",
      "pl0",
      "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n",
    );
    await issue(dir, "leaf", "sub", "subjectAltName=DNS:x.test\nbasicConstraints=CA:FALSE\n");
    await issue(dir, "leaf0", "pl0", "subjectAltName=DNS:x.test\nbasicConstraints=CA:FALSE\n");
    const der = (n: string) =>
      new Uint8Array(new X509Certificate(Deno.readTextFileSync(`${dir}/${n}.crt`)).raw);
    const anchors = [new X509Certificate(Deno.readTextFileSync(root.cert))];
    assert.deepEqual(verifyChain([der("leaf0"), der("pl0")], anchors), { ok: true }, "control");
    assert.equal(verifyChain([der("leaf"), der("sub"), der("pl0")], anchors).ok, false);
  }));

// Guard (passes): a certificate speaks only for the domains it names, once, and never for ours.
Deno.test("s2s cert review (guard): SASL EXTERNAL and certificate dialback stay within the certificate's names", () =>
  withDir(async (dir) => {
    const ca = await makeCa(dir, "root");
    const pCert = await issueCert(dir, ca, "p.test", { dns: ["p.test"] });
    const ownCert = await issueCert(dir, ca, "b.test-peer", { dns: ["b.test"] });
    await world(1, { s2s_require_encryption: true, s2s_cafile: ca.cert }, async ({ s2sPort }) => {
      // An authzid other than the stream's from: refused; dialback for another domain is not
      // answered by the certificate (q.test has no server: invalid).
      const p = await tlsPeer(s2sPort, "p.test", pCert);
      assert.match(p.text(), /EXTERNAL/);
      p.send(`<auth xmlns='${SASL_NS}' mechanism='EXTERNAL'>${btoa("q.test")}</auth>`);
      assert.ok(await p.until(/<not-authorized\/><\/failure>/), p.text());
      p.send("<db:result from='q.test' to='b.test'>00</db:result>");
      assert.ok(await p.until(/<db:result [^>]*type='invalid'/), p.text());
      p.close();
      // The right one: success, once.
      const q = await tlsPeer(s2sPort, "p.test", pCert);
      q.send(`<auth xmlns='${SASL_NS}' mechanism='EXTERNAL'>=</auth>`);
      assert.ok(await q.until(/<success /), q.text());
      q.send(HEADER("p.test", "b.test"));
      assert.ok(await q.until(/<success [^]*<\/stream:features>/), q.text());
      assert.doesNotMatch(q.text().split("<success")[1], /EXTERNAL/);
      q.send(`<auth xmlns='${SASL_NS}' mechanism='EXTERNAL'>=</auth>`);
      assert.ok(await q.until(/policy-violation/), q.text());
      q.close();
      // A certificate naming our own domain does not make a peer us.
      const o = await tlsPeer(s2sPort, "b.test", ownCert);
      o.send(`<auth xmlns='${SASL_NS}' mechanism='EXTERNAL'>=</auth>`);
      assert.ok(await o.until(/invalid-from/), o.text());
      assert.doesNotMatch(o.text(), /<success /);
      o.close();
    });
  }));

// Guard (passes): the whole scheme rests on the TLS layer checking that the peer holds the key
// of the certificate it shows (CertificateVerify); certs.ts checks only the chain and names. A
// raw TLS 1.2 handshake after STARTTLS shows b.test's s2s port someone else's certificate and
// signs CertificateVerify with another key: the handshake must end in an alert
// (decrypt_error), where with the right key it waits for our Finished.
Deno.test("s2s cert review (guard): a client certificate without its private key is refused by TLS", () =>
  withDir(async (dir) => {
    const ca = await makeCa(dir, "root");
    const pCert = await issueCert(dir, ca, "p.test", { dns: ["p.test"] });
    const stranger = await issueCert(dir, ca, "stranger", { dns: ["stranger.test"] });
    await world(1, { s2s_require_encryption: true, s2s_cafile: ca.cert }, async ({ s2sPort }) => {
      const right = await rawTls12CertificateVerify(s2sPort, pCert.leaf, pCert.key);
      assert.equal(right, "silence", "control: the right key");
      const wrong = await rawTls12CertificateVerify(s2sPort, pCert.leaf, stranger.key);
      assert.match(wrong, /^alert 0233/, "signed with another key");
    });
  }));

/**
 * STARTTLS, then a TLS 1.2 handshake by hand up to CertificateVerify (ECDHE-ECDSA, P-256):
 * "silence" when the server waits for our Finished, "alert <hex>" when it refused.
 */
async function rawTls12CertificateVerify(port: number, certPem: string, keyPem: string) {
  const { createPrivateKey, createSign, generateKeyPairSync, randomBytes } = await import(
    "node:crypto"
  );
  const certDer = new Uint8Array(new X509Certificate(Deno.readTextFileSync(certPem)).raw);
  const key = createPrivateKey(Deno.readTextFileSync(keyPem));
  const s = connect(port, "127.0.0.1");
  s.on("error", () => {});
  let buf = new Uint8Array(0);
  const waiters: (() => void)[] = [];
  s.on("data", (d: Uint8Array) => {
    const n = new Uint8Array(buf.length + d.length);
    n.set(buf);
    n.set(d, buf.length);
    buf = n;
    waiters.splice(0).forEach((w) => w());
  });
  const more = (ms: number) =>
    new Promise<boolean>((r) => {
      const t = setTimeout(() => r(false), ms);
      waiters.push(() => (clearTimeout(t), r(true)));
    });
  const text = () => new TextDecoder().decode(buf);
  s.write(HEADER("p.test", "b.test"));
  while (!/<\/stream:features>/.test(text())) if (!await more(5000)) throw new Error(text());
  s.write(`<starttls xmlns='${TLS_NS}'/>`);
  while (!/<proceed[^>]*\/>/.test(text())) if (!await more(5000)) throw new Error(text());
  buf = new Uint8Array(0);
  const cat = (...a: Uint8Array[]) => {
    const out = new Uint8Array(a.reduce((n, x) => n + x.length, 0));
    let o = 0;
    for (const x of a) (out.set(x, o), o += x.length);
    return out;
  };
  const u = (n: number, bytes: number) => {
    const out = new Uint8Array(bytes);
    for (let i = bytes - 1; i >= 0; i--, n = Math.floor(n / 256)) out[i] = n & 255;
    return out;
  };
  const hs = (t: number, body: Uint8Array) => cat(new Uint8Array([t]), u(body.length, 3), body);
  const rec = (body: Uint8Array) => cat(new Uint8Array([22, 3, 3]), u(body.length, 2), body);
  const ext = (t: number, d: number[]) => cat(u(t, 2), u(d.length, 2), new Uint8Array(d));
  const exts = cat(
    ext(10, [0, 2, 0, 0x17]), // supported_groups: secp256r1
    ext(11, [1, 0]), // ec_point_formats: uncompressed
    ext(13, [0, 2, 4, 3]), // signature_algorithms: ecdsa_secp256r1_sha256
    ext(23, []), // extended_master_secret
    ext(0xff01, [0]), // renegotiation_info
  );
  const clientHello = hs(
    1,
    cat(
      new Uint8Array([3, 3]),
      new Uint8Array(randomBytes(32)),
      new Uint8Array([0, 0, 2, 0xc0, 0x2b, 1, 0]), // no session; ECDHE-ECDSA-AES128-GCM-SHA256; null
      u(exts.length, 2),
      exts,
    ),
  );
  s.write(rec(clientHello));
  let transcript = clientHello;
  let hsBuf = new Uint8Array(0);
  for (let done = false; !done;) {
    while (buf.length < 5 || buf.length < 5 + buf[3] * 256 + buf[4]) {
      if (!await more(5000)) throw new Error("no ServerHelloDone");
    }
    const len = buf[3] * 256 + buf[4];
    const [type, body] = [buf[0], buf.slice(5, 5 + len)];
    buf = buf.slice(5 + len);
    if (type === 21) {
      return `alert ${Array.from(body, (b) => b.toString(16).padStart(2, "0")).join("")}`;
    }
    hsBuf = cat(hsBuf, body);
    while (hsBuf.length >= 4 && hsBuf.length >= 4 + (hsBuf[1] << 16 | hsBuf[2] << 8 | hsBuf[3])) {
      const m = hsBuf.slice(0, 4 + (hsBuf[1] << 16 | hsBuf[2] << 8 | hsBuf[3]));
      hsBuf = hsBuf.slice(m.length);
      transcript = cat(transcript, m);
      if (m[0] === 14) done = true; // ServerHelloDone
    }
  }
  const certs = cat(u(certDer.length, 3), certDer);
  const certificate = hs(11, cat(u(certs.length, 3), certs));
  const eph = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({
    type: "spki",
    format: "der",
  });
  const point = new Uint8Array(eph.subarray(eph.length - 65)); // the uncompressed point
  const keyExchange = hs(16, cat(new Uint8Array([65]), point));
  transcript = cat(transcript, certificate, keyExchange);
  const sig = new Uint8Array(createSign("SHA256").update(transcript).sign(key));
  const verify = hs(15, cat(new Uint8Array([4, 3]), u(sig.length, 2), sig));
  s.write(cat(rec(certificate), rec(keyExchange), rec(verify)));
  const answered = await more(1500);
  s.destroy();
  if (!answered) return "silence";
  return buf[0] === 21
    ? `alert ${buf[5].toString(16).padStart(2, "0")}${buf[6].toString(16).padStart(2, "0")}`
    : `other ${buf[0]}`;
}

// BUG 2b (low): the anchor's own CA constraints are not applied either (certs.ts:149): a
// certificate put in s2s_cafile to pin one peer (a non-CA leaf, here without keyUsage) becomes
// an issuer for every domain in the hands of that peer. OpenSSL refuses ("invalid CA
// certificate"), with and without -partial_chain. Fix: an anchor that issues another
// certificate must be a CA (`a.ca`); a self-signed anchor that IS the peer's certificate (the
// usual pinning) needs no issuing (compare DER before looking for an issuer).
Deno.test("s2s cert review: a pinned non-CA certificate in s2s_cafile issues nothing", () =>
  withDir(async (dir) => {
    await makeCa(dir, "root");
    await issue(dir, "pinned", "root", "subjectAltName=DNS:pinned.test\n");
    await issue(
      dir,
      "victim",
      "pinned",
      "subjectAltName=DNS:victim.test\nbasicConstraints=CA:FALSE\n",
    );
    const x = (n: string) => new X509Certificate(Deno.readTextFileSync(`${dir}/${n}.crt`));
    const anchors = [x("pinned")];
    assert.equal(verifyChain([new Uint8Array(x("victim").raw)], anchors).ok, false);
  }));

// BUG 4 (low, a false negative): verifyChain takes the FIRST anchor (certs.ts:149-151) or
// peer-sent issuer (certs.ts:153) whose signature checks, and gives up when it is out of date.
// A renewed root (same name and key, new dates) listed after the old one in the bundle or
// s2s_cafile, or a peer sending the old and new cross-signs of its intermediate, fails a chain
// that OpenSSL accepts. Fix: `anchors.find((a) => inDates(a) && signedBy(cur, a))`, and the
// same inDates filter when choosing `next` (or try every candidate).
Deno.test("s2s cert review: an expired copy of a root listed first does not hide the valid one", () =>
  withDir(async (dir) => {
    const root = await makeCa(dir, "root");
    await issue(dir, "leaf", "root", "subjectAltName=DNS:x.test\nbasicConstraints=CA:FALSE\n");
    // The same root (name and key) made again, valid one day only.
    await openssl(
      dir,
      "req",
      "-x509",
      "-key",
      "root.key",
      "-days",
      "1",
      "-subj",
      "/CN=root",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-out",
      "old.crt",
    );
    const x = (f: string) => new X509Certificate(Deno.readTextFileSync(f));
    const leaf = new Uint8Array(x(`${dir}/leaf.crt`).raw);
    const in10days = Date.now() + 10 * 86_400_000;
    assert.deepEqual(verifyChain([leaf], [x(root.cert)], in10days), { ok: true }, "control");
    assert.deepEqual(verifyChain([leaf], [x(`${dir}/old.crt`), x(root.cert)], in10days), {
      ok: true,
    });
  }));

Deno.test("s2s: one incoming stream authenticated for several domains (multiplexed) takes stanzas from each, and invalid-from for others", () =>
  withDir(async (dir) => {
    const ca = await makeCa(dir, "root");
    const both = await issueCert(dir, ca, "p1.test", { dns: ["p1.test", "p2.test"] });
    await world(
      1,
      { s2s_require_encryption: true, s2s_cafile: ca.cert },
      async ({ s2sPort, bob }) => {
        const p = await tlsPeer(s2sPort, "p1.test", both);
        // Dialback for each domain: answered by the certificate, which names both.
        p.send("<db:result from='p1.test' to='b.test'>k1</db:result>");
        p.send("<db:result from='p2.test' to='b.test'>k2</db:result>");
        assert.ok(await p.until(/from='b.test' to='p1.test' type='valid'/), p.text());
        assert.ok(await p.until(/from='b.test' to='p2.test' type='valid'/), p.text());
        p.send("<message from='x@p1.test' to='bob@b.test' id='m1'><body>one</body></message>");
        p.send("<message from='y@p2.test' to='bob@b.test' id='m2'><body>two</body></message>");
        await bob.waitFor(/<message [^>]*from="x@p1.test"[^>]*>[^]*?one/);
        await bob.waitFor(/<message [^>]*from="y@p2.test"[^>]*>[^]*?two/);
        // A third domain, not authenticated on this stream: invalid-from, and the stream ends.
        p.send("<message from='z@p3.test' to='bob@b.test' id='m3'><body>three</body></message>");
        assert.ok(await p.until(/<invalid-from /), p.text());
        assert.doesNotMatch(bob.received, /three/);
        p.close();
      },
    );
  }));
