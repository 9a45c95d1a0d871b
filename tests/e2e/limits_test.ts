/**
 * Limits on a real socket: what the parser, the connection caps, the timeouts
 * and the rate limit do to a client that pushes them.
 */
import assert from "node:assert/strict";
import { connect as tlsConnect } from "node:tls";
import { RawClient, streamHeader } from "../helpers/rawclient.ts";
import { freePort, startTestServer, type TestServer } from "../helpers/server.ts";

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};

async function withServer(options: Record<string, unknown>, fn: (t: TestServer) => Promise<void>) {
  const t = await startTestServer({ ...PLAIN, ...options });
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await t.server.users("localhost")!.createUser("romeo", "pw");
    await fn(t);
  } finally {
    await t.stop();
  }
}

/** Sends `piece` up to `times` times, stopping when the server closes; returns bytes sent. */
async function pushUntilClosed(c: RawClient, piece: string, times: number): Promise<number> {
  let sent = 0;
  for (let i = 0; i < times && !c.closed; i++) {
    await new Promise<void>((resolve) => c.socket.write(piece, () => resolve()));
    sent += piece.length;
    await new Promise((r) => setTimeout(r, 0));
  }
  return sent;
}

Deno.test("before authentication: whitespace floods, endless attributes and huge tags are cut off early", async () => {
  await withServer({ limits: false, c2s_close_timeout: 1 }, async (t) => {
    const mib = " ".repeat(1 << 20);
    // 50 MiB of whitespace after the header.
    let c = await RawClient.connect(t.port);
    c.send(streamHeader());
    await c.waitFor(/<\/stream:features>/);
    let sent = await pushUntilClosed(c, mib, 50);
    await c.waitFor(/<policy-violation /);
    await c.waitClosed();
    assert.ok(sent < 50 << 20, `the server read all ${sent} bytes`);
    // One attribute value that never ends.
    c = await RawClient.connect(t.port);
    c.send(streamHeader() + "<message to='");
    sent = await pushUntilClosed(c, "a".repeat(1 << 20), 50);
    await c.waitFor(/<policy-violation /);
    await c.waitClosed();
    assert.ok(sent < 50 << 20, `the server read all ${sent} bytes`);
    // A 1.1 MB start tag with 100,000 attributes.
    c = await RawClient.connect(t.port);
    let attrs = "";
    for (let i = 0; i < 100_000; i++) attrs += ` a${i}='x'`;
    c.send(streamHeader() + `<message${attrs}/>`);
    await c.waitFor(/<policy-violation /);
    await c.waitClosed();
    // A stanza over 10,000 bytes before authentication; 20,000 are fine after.
    c = await RawClient.connect(t.port);
    c.send(
      streamHeader() + `<iq type='get' id='big'><x xmlns='urn:x'>${"y".repeat(12_000)}</x></iq>`,
    );
    await c.waitFor(/<policy-violation /);
    await c.waitClosed();
    c = await RawClient.connect(t.port);
    await c.login("juliet", "pw");
    c.send(
      `<message to='juliet@localhost/test' id='big'><body>${"y".repeat(20_000)}</body></message>`,
    );
    await c.waitFor(/id="big"/);
    c.close();
    // The server still serves others.
    const d = await RawClient.connect(t.port);
    await d.login("romeo", "pw");
    d.close();
  });
});

Deno.test("a stanza broken by a wrong end tag or by </stream:stream> is not delivered", async () => {
  await withServer({}, async (t) => {
    const romeo = await RawClient.connect(t.port);
    await romeo.login("romeo", "pw", "r");
    romeo.send("<presence/>");
    await romeo.waitFor(/<presence/);
    romeo.clear();
    for (const end of ["</iq>", "</stream:stream>"]) {
      const juliet = await RawClient.connect(t.port);
      await juliet.login("juliet", "pw", "j");
      juliet.send(`<message to='romeo@localhost/r' type='chat' id='broken'><body>x</body>${end}`);
      await juliet.waitFor(/<not-well-formed /);
      await juliet.waitClosed();
    }
    // A message sent after them does arrive, and nothing else did.
    const juliet = await RawClient.connect(t.port);
    await juliet.login("juliet", "pw", "j");
    juliet.send("<message to='romeo@localhost/r' type='chat' id='fine'><body>y</body></message>");
    await romeo.waitFor(/id="fine"/);
    assert.doesNotMatch(romeo.received, /id="broken"/);
    juliet.close();
    romeo.close();
  });
});

Deno.test("unauthenticated connections per address and connections in all are capped, politely", async () => {
  await withServer({ c2s_max_unauthed_per_ip: 3 }, async (t) => {
    const open: RawClient[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.connect(t.port);
      c.send(streamHeader());
      await c.waitFor(/<\/stream:features>/);
      open.push(c);
    }
    const fourth = await RawClient.connect(t.port);
    await fourth.waitFor(
      /<stream:error><policy-violation [^>]*\/><text [^>]*>Too many unauthenticated/,
    );
    await fourth.waitClosed();
    // Once one of them has bound a resource, the address may open another.
    const [first] = open;
    first.clear();
    first.send(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
        btoa("\0juliet\0pw")
      }</auth>`,
    );
    await first.waitFor(/<success/);
    first.send(streamHeader());
    await first.waitFor(/<bind /);
    first.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await first.waitFor(/<\/jid>/);
    const fifth = await RawClient.connect(t.port);
    await fifth.login("romeo", "pw");
    for (const c of [...open, fifth]) c.close();
  });
  await withServer({ c2s_max_connections: 2 }, async (t) => {
    const a = await RawClient.connect(t.port);
    await a.login("juliet", "pw", "a");
    const b = await RawClient.connect(t.port);
    await b.login("juliet", "pw", "b");
    const c = await RawClient.connect(t.port);
    await c.waitFor(/<stream:error><resource-constraint /);
    await c.waitClosed();
    a.close();
    b.close();
  });
});

Deno.test("an authenticated stream that binds no resource times out; max_user_sessions caps resources", async () => {
  await withServer({ c2s_timeout: 1, max_user_sessions: 2 }, async (t) => {
    const c = await RawClient.connect(t.port);
    c.send(streamHeader());
    await c.waitFor(/<\/stream:features>/);
    c.send(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
        btoa("\0juliet\0pw")
      }</auth>`,
    );
    await c.waitFor(/<success/);
    c.send(streamHeader());
    await c.waitFor(/<bind /);
    await c.waitFor(/<connection-timeout /, 5000);
    await c.waitClosed();

    const a = await RawClient.connect(t.port);
    const b = await RawClient.connect(t.port);
    await a.login("juliet", "pw", "a");
    await b.login("juliet", "pw", "b");
    const third = await RawClient.connect(t.port);
    third.send(streamHeader());
    await third.waitFor(/<\/stream:features>/);
    third.send(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
        btoa("\0juliet\0pw")
      }</auth>`,
    );
    await third.waitFor(/<success/);
    third.send(streamHeader());
    await third.waitFor(/<\/stream:features>/);
    third.send(
      "<iq type='set' id='b3'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>c</resource></bind></iq>",
    );
    await third.waitFor(
      /<iq [^>]*type="error"[^>]*><error type="wait"><resource-constraint [^>]*\/><text [^>]*>Resource limit reached; only 2 resources allowed/,
    );
    // Rebinding a resource already in use replaces it, limit or not.
    third.send(
      "<iq type='set' id='b4'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>a</resource></bind></iq>",
    );
    await third.waitFor(/<jid>juliet@localhost\/a<\/jid>/);
    await a.waitFor(/<conflict /);
    for (const x of [a, b, third]) x.close();
  });
});

Deno.test("stream versions: 2.0 is answered with 1.0 and the stream goes on; 0.9 is refused", async () => {
  await withServer({}, async (t) => {
    const header2 = (version: string) =>
      `<stream:stream to='localhost' version='${version}' xmlns='jabber:client' ` +
      "xmlns:stream='http://etherx.jabber.org/streams'>";
    const c = await RawClient.connect(t.port);
    c.send(header2("2.0"));
    const header = (await c.waitFor(/<stream:stream [^>]*>/))[0];
    assert.match(header, /version='1\.0'/);
    await c.waitFor(/<\/stream:features>/);
    c.close();
    const old = await RawClient.connect(t.port);
    old.send(header2("0.9"));
    await old.waitFor(/<unsupported-version /);
    old.close();
  });
});

Deno.test("direct TLS negotiates the ALPN protocol xmpp-client (XEP-0368)", async () => {
  await withServer({}, async (t) => {
    const protocol = await new Promise<string | false | null>((resolve, reject) => {
      const s = tlsConnect({
        port: t.tlsPort,
        host: "127.0.0.1",
        servername: "localhost",
        rejectUnauthorized: false,
        ALPNProtocols: ["xmpp-client"],
      }, () => {
        resolve(s.alpnProtocol);
        s.destroy();
      });
      s.on("error", reject);
    });
    assert.equal(protocol, "xmpp-client");
  });
});

Deno.test("closing: the server waits c2s_close_timeout for the client's </stream:stream>, then closes", async () => {
  await withServer({ c2s_close_timeout: 1 }, async (t) => {
    // The client closes first: the server answers and the connection ends at once.
    let c = await RawClient.connect(t.port);
    await c.login("juliet", "pw");
    c.send("</stream:stream>");
    await c.waitFor(/<\/stream:stream>/);
    await c.waitClosed(500, false);
    // The server closes (a conflict) and the client says nothing: closed after the timeout.
    c = await RawClient.connect(t.port);
    await c.login("juliet", "pw", "same");
    const d = await RawClient.connect(t.port);
    await d.login("juliet", "pw", "same");
    await c.waitFor(/<conflict /);
    const closedAt = Date.now();
    await c.waitClosed(5000, false);
    assert.ok(Date.now() - closedAt >= 500, "closed without waiting for the client");
    d.close();
  });
});

Deno.test("the inbound rate limit slows a flooding client, not the others", async () => {
  await withServer({ limits: { c2s: { rate: "2kb/s", burst: "1s" } } }, async (t) => {
    const flooder = await RawClient.connect(t.port);
    await flooder.login("juliet", "pw");
    const other = await RawClient.connect(t.port);
    await other.login("romeo", "pw");
    const pad = "p".repeat(900);
    let burst = "";
    for (let i = 0; i < 8; i++) {
      burst +=
        `<iq type='get' id='f${i}' to='localhost'><ping xmlns='urn:xmpp:ping' pad='${pad}'/></iq>`;
    }
    flooder.send(burst); // ~8 KB at 2 KB/s: about 3 s more than the burst allows
    other.send("<iq type='get' id='o' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await other.waitFor(/id="o"/, 1000);
    await new Promise((r) => setTimeout(r, 500));
    assert.doesNotMatch(flooder.received, /id="f7"/, "the flood was not slowed");
    await flooder.waitFor(/id="f7"/, 10_000);
    flooder.close();
    other.close();
  });
});

Deno.test("the listener survives running out of file descriptors (ulimit -n 256, 300 idle connections)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-fd-" });
  const port = await freePort();
  await Deno.writeTextFile(
    `${dir}/cadence.config.ts`,
    `export default ${
      JSON.stringify({
        ...PLAIN,
        virtual_hosts: { localhost: {} },
        interfaces: ["127.0.0.1"],
        c2s_ports: [port],
        c2s_direct_tls_ports: [],
        s2s_ports: [await freePort()],
        http_ports: [],
        https_ports: [],
        data_path: dir,
        c2s_max_unauthed_per_ip: 1000,
        log: "warn",
      })
    };\n`,
  );
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const register = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      main,
      "register",
      "juliet",
      "localhost",
      "pw",
      "--config",
      `${dir}/cadence.config.ts`,
    ],
  }).output();
  assert.equal(register.code, 0, new TextDecoder().decode(register.stderr));
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n 256 && exec "${Deno.execPath()}" run -A "${main}" start --config "${dir}/cadence.config.ts"`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.stderr.pipeTo(Deno.stdout.writable, { preventClose: true }).catch(() => {});
  const clients: RawClient[] = [];
  try {
    // Wait for the port.
    for (let i = 0;; i++) {
      try {
        (await RawClient.connect(port)).close();
        break;
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (let i = 0; i < 300; i++) clients.push(await RawClient.connect(port));
    await new Promise((r) => setTimeout(r, 500));
    // Past the cap (256 less the reserve) connections were turned away politely.
    const refused = clients.filter((c) => /<resource-constraint /.test(c.received)).length;
    assert.ok(refused > 0, "no connection was refused");
    for (const c of clients) c.close();
    // The port accepts again within seconds (Deno's accept loop died at EMFILE;
    // the listener notices and reopens): a fresh login works.
    let error: unknown;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline;) {
      const fresh = await RawClient.connect(port).catch((e) => e as Error);
      if (fresh instanceof Error) {
        error = fresh;
      } else {
        try {
          await fresh.login("juliet", "pw");
          error = undefined;
          break;
        } catch (e) {
          error = e;
        } finally {
          fresh.close();
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(error, undefined, `no login after the connections closed: ${error}`);
  } finally {
    for (const c of clients) c.close();
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await output;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plaintext the rate limit held back when STARTTLS began is never read as encrypted", async () => {
  await withServer({
    c2s_require_encryption: true,
    limits: { c2s: { rate: "2kb/s", burst: "1s" } },
  }, async (t) => {
    const c = await RawClient.connect(t.port);
    try {
      c.send(streamHeader());
      await c.waitFor(/<\/stream:features>/);
      await new Promise((r) => setTimeout(r, 1000)); // the bucket is full again
      c.clear();
      // <starttls/>, then more than the bucket holds, then an injected stream header.
      c.send(
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + " ".repeat(2500) + streamHeader(),
      );
      await c.waitFor(/<proceed /);
      await c.startTls();
      await new Promise((r) => setTimeout(r, 2500)); // long enough for the bucket to refill
      assert.equal(c.received, "", "the server answered a stream header sent in plaintext");
      c.send(streamHeader()); // the client's own, over TLS
      await c.waitFor(/<\/stream:features>/);
    } finally {
      c.close();
    }
  });
});

Deno.test("the rate limit holds under TLS too: a client cannot push faster than it allows", async () => {
  await withServer({
    c2s_require_encryption: true,
    limits: { c2s: { rate: "2kb/s", burst: "1s" } },
    unlimited_jids: [],
  }, async (t) => {
    const c = await RawClient.connect(t.port);
    try {
      c.send(streamHeader());
      await c.waitFor(/<starttls /);
      c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      await c.waitFor(/<proceed /);
      await c.startTls();
      c.send(streamHeader());
      await c.waitFor(/<\/stream:features>/);
      // 40 MB of one endless body: the server reads it no faster than 2 kB/s.
      c.send("<message to='romeo@localhost'><body>");
      const mib = new Uint8Array(1 << 20).fill(0x61);
      for (let i = 0; i < 40; i++) c.socket.write(mib);
      await new Promise((r) => setTimeout(r, 2000));
      assert.ok(
        c.socket.writableLength > 30 << 20,
        `the server took ${40 - c.socket.writableLength / (1 << 20)} MB in 2 s`,
      );
    } finally {
      c.close();
    }
  });
});

Deno.test("authenticated streams that bind nothing still count against their address and their account", async () => {
  const auth = `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
    btoa("\0juliet\0pw")
  }</auth>`;
  await withServer({ c2s_max_unauthed_per_ip: 3, max_user_sessions: 100 }, async (t) => {
    const open: RawClient[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.connect(t.port);
      open.push(c);
      c.send(streamHeader() + auth);
      await c.waitFor(/<success/);
    }
    const fourth = await RawClient.connect(t.port);
    await fourth.waitFor(/<policy-violation [^>]*\/><text [^>]*>Too many unauthenticated/);
    // Binding frees the place.
    open[0].send(streamHeader());
    await open[0].waitFor(/<bind /);
    open[0].send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await open[0].waitFor(/<\/jid>/);
    const fifth = await RawClient.connect(t.port);
    fifth.send(streamHeader());
    await fifth.waitFor(/<\/stream:features>/);
    for (const c of [...open, fourth, fifth]) c.close();
  });
  await withServer({ max_user_sessions: 2 }, async (t) => {
    const open: RawClient[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await RawClient.connect(t.port);
      open.push(c);
      c.send(streamHeader() + auth);
      await c.waitFor(/<success/);
    }
    const third = await RawClient.connect(t.port);
    open.push(third);
    third.send(streamHeader() + auth);
    await third.waitFor(/<temporary-auth-failure\/><text>Too many connections of this account/);
    for (const c of open) c.close();
  });
});

Deno.test("any SASL failure counts: a stream that only aborts is closed after five", async () => {
  await withServer({}, async (t) => {
    const c = await RawClient.connect(t.port);
    c.send(streamHeader());
    await c.waitFor(/<\/stream:features>/);
    for (let i = 0; i < 5; i++) c.send("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    await c.waitFor(/<stream:error><policy-violation /);
    await c.waitClosed();
  });
});
