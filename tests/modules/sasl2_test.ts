/**
 * SASL2 (XEP-0388), Bind2 (XEP-0386) and FAST (XEP-0484) on the wire: one
 * exchange to log in, bind and enable carbons and stream management; the
 * same device gets the same resource; failures as RFC 6120 SASL counts them;
 * FAST tokens issued, used, rotated, replayed, invalidated and revoked.
 */
import assert from "node:assert/strict";
import { RawClient, streamHeader } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { parseXml } from "../../core/xml/parser.ts";

const SASL2 = "urn:xmpp:sasl:2";
const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};
const UA = (id: string) =>
  `<user-agent id='${id}'><software>Tester</software><device>Laptop</device></user-agent>`;

async function withServer(
  options: Record<string, unknown>,
  fn: (t: TestServer, open: (tls?: boolean) => Promise<RawClient>) => Promise<void>,
) {
  const t = await startTestServer({ ...PLAIN, ...options });
  const clients: RawClient[] = [];
  try {
    for (const u of ["juliet", "romeo"]) await t.server.users("localhost")!.createUser(u, "pw");
    await fn(t, async (tls = false) => {
      const c = tls ? await RawClient.connectTls(t.tlsPort) : await RawClient.connect(t.port);
      clients.push(c);
      c.send(streamHeader());
      await c.waitFor(/<\/stream:features>/);
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
}

const plain = (user: string, pw = "pw") => btoa(`\0${user}\0${pw}`);

/** Sends `<authenticate/>` and returns the parsed answer (success or failure). */
async function authenticate(c: RawClient, mechanism: string, initial: string, inner = "") {
  c.clear();
  c.send(
    `<authenticate xmlns='${SASL2}' mechanism='${mechanism}'>` +
      `<initial-response>${initial}</initial-response>${inner}</authenticate>`,
  );
  const m = await c.waitFor(/<(success|failure) xmlns="urn:xmpp:sasl:2"[^]*?<\/\1>/);
  return parseXml(m[0]);
}

async function hmac(key: string, text: string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(text)));
}

/** The HT-SHA-256-NONE initial response for a token. */
async function htResponse(user: string, token: string): Promise<string> {
  const mac = await hmac(token, "Initiator");
  const msg = new Uint8Array([...new TextEncoder().encode(user), 0, ...mac]);
  return msg.toBase64();
}

Deno.test("sasl2: offered with Bind2's inline features; FAST only on an encrypted stream", async () => {
  await withServer({}, async (_t, open) => {
    const c = await open();
    const features = parseXml(c.received.slice(c.received.indexOf("<stream:features")));
    const auth = features.getChild("authentication", SASL2)!;
    assert.ok(auth.tags().some((m) => m.name === "mechanism" && m.getText() === "PLAIN"));
    const inline = auth.getChild("inline")!;
    const bind = inline.getChild("bind", "urn:xmpp:bind:0")!;
    const vars = bind.getChild("inline")!.tags().map((f) => f.attrs.var);
    assert.ok(vars.includes("urn:xmpp:carbons:2") && vars.includes("urn:xmpp:sm:3"), String(vars));
    assert.ok(inline.getChild("sm", "urn:xmpp:sm:3"));
    assert.equal(inline.getChild("fast", "urn:xmpp:fast:0"), undefined, "no FAST without TLS");
    const secure = await open(true);
    const tlsFeatures = parseXml(
      secure.received.slice(secure.received.indexOf("<stream:features")),
    );
    const fast = tlsFeatures.getChild("authentication", SASL2)!.getChild("inline")!
      .getChild("fast", "urn:xmpp:fast:0")!;
    assert.equal(fast.getChildText("mechanism"), "HT-SHA-256-NONE");
  });
});

Deno.test("sasl2: log in, bind, enable carbons and stream management in one exchange, no restart", async () => {
  await withServer({}, async (t, open) => {
    const c = await open();
    const success = await authenticate(
      c,
      "PLAIN",
      plain("juliet"),
      UA("d0f4f0f8-uaid-1") +
        "<bind xmlns='urn:xmpp:bind:0'><tag>Tester</tag>" +
        "<enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>",
    );
    assert.equal(success.name, "success");
    const jid = success.getChildText("authorization-identifier")!;
    assert.match(jid, /^juliet@localhost\/Tester\.[A-Za-z0-9_-]{8}$/);
    const bound = success.getChild("bound", "urn:xmpp:bind:0")!;
    const enabled = bound.getChild("enabled", "urn:xmpp:sm:3")!;
    assert.equal(enabled.attrs.resume, "true");
    const session = t.server.sessions.full.get(jid)!;
    assert.equal(session.ext?.carbons, true);
    // The stream goes on, bound: a ping, no new stream header needed.
    c.send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await c.waitFor(/id="p"/);
    // The same device again: the same resource, the old session replaced.
    const again = await open();
    const second = await authenticate(
      again,
      "PLAIN",
      plain("juliet"),
      UA("d0f4f0f8-uaid-1") + "<bind xmlns='urn:xmpp:bind:0'><tag>Tester</tag></bind>",
    );
    assert.equal(second.getChildText("authorization-identifier"), jid);
    await c.waitFor(/<conflict /);
    // Another device: another resource.
    const other = await open();
    const third = await authenticate(
      other,
      "PLAIN",
      plain("juliet"),
      UA("another-device") + "<bind xmlns='urn:xmpp:bind:0'><tag>Tester</tag></bind>",
    );
    assert.notEqual(third.getChildText("authorization-identifier"), jid);
  });
});

Deno.test("sasl2: failures are counted as with RFC 6120 SASL, and the limits of an authenticated stream apply", async () => {
  await withServer({}, async (t, open) => {
    const c = await open();
    for (let i = 0; i < 2; i++) {
      const f = await authenticate(c, "PLAIN", plain("juliet", "wrong"), UA("x"));
      assert.equal(f.name, "failure");
      assert.ok(f.getChild("not-authorized", "urn:ietf:params:xml:ns:xmpp-sasl"));
    }
    const unknown = await authenticate(c, "NO-SUCH-MECH", "=", UA("x"));
    assert.ok(unknown.getChild("invalid-mechanism", "urn:ietf:params:xml:ns:xmpp-sasl"));
    await authenticate(c, "PLAIN", plain("juliet", "wrong"), UA("x"));
    await c.waitFor(/<policy-violation /);
    await c.waitClosed();
    // A bad user-agent id is refused.
    const d = await open();
    const bad = await authenticate(d, "PLAIN", plain("juliet"), `<user-agent id=''/>`);
    assert.ok(bad.getChild("malformed-request", "urn:ietf:params:xml:ns:xmpp-sasl"));
    // Authenticated by SASL2 (no restart), a stream may send bigger stanzas than before.
    const e = await open();
    await authenticate(e, "PLAIN", plain("romeo"), UA("r") + "<bind xmlns='urn:xmpp:bind:0'/>");
    e.send(
      `<message to='juliet@localhost' type='chat'><body>${"x".repeat(20_000)}</body></message>`,
    );
    e.send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await e.waitFor(/id="p"/);
    assert.ok(!e.closed);
    assert.ok(t.server.sessions.full.size >= 1);
  });
});

Deno.test("sasl2: inline resumption of a hibernating session", async () => {
  await withServer({}, async (t, open) => {
    const c = await open();
    const first = await authenticate(
      c,
      "PLAIN",
      plain("juliet"),
      UA("phone") +
        "<bind xmlns='urn:xmpp:bind:0'><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>",
    );
    const jid = first.getChildText("authorization-identifier")!;
    const id = first.getChild("bound", "urn:xmpp:bind:0")!.getChild("enabled", "urn:xmpp:sm:3")!
      .attrs.id!;
    c.socket.resetAndDestroy();
    const deadline = Date.now() + 5000;
    while (!t.server.sessions.full.get(jid)?.hibernating && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const session = t.server.sessions.full.get(jid)!;
    const romeo = await open();
    await authenticate(romeo, "PLAIN", plain("romeo"), UA("r") + "<bind xmlns='urn:xmpp:bind:0'/>");
    romeo.send(`<message to='${jid}' type='chat' id='while'><body>while away</body></message>`);
    await new Promise((r) => setTimeout(r, 200));
    const again = await open();
    const resumed = await authenticate(
      again,
      "PLAIN",
      plain("juliet"),
      UA("phone") + `<resume xmlns='urn:xmpp:sm:3' previd='${id}' h='0'/>` +
        "<bind xmlns='urn:xmpp:bind:0'/>",
    );
    assert.ok(resumed.getChild("resumed", "urn:xmpp:sm:3"));
    assert.equal(resumed.getChild("bound", "urn:xmpp:bind:0"), undefined, "resumed, not bound");
    assert.equal(resumed.getChildText("authorization-identifier"), jid);
    await again.waitFor(/id="while"/);
    assert.equal(t.server.sessions.full.get(jid), session);
    // A wrong id: <failed/> in the success, and Bind2 binds a new session instead.
    const other = await open();
    const failed = await authenticate(
      other,
      "PLAIN",
      plain("juliet"),
      UA("tablet") +
        `<resume xmlns='urn:xmpp:sm:3' previd='nope' h='0'/><bind xmlns='urn:xmpp:bind:0'/>`,
    );
    assert.ok(failed.getChild("failed", "urn:xmpp:sm:3"));
    assert.ok(failed.getChild("bound", "urn:xmpp:bind:0"));
  });
});

Deno.test("fast: a token asked for with a password logs in next time; replay, invalidation and password change", async () => {
  await withServer({}, async (t, open) => {
    const c = await open(true);
    const first = await authenticate(
      c,
      "PLAIN",
      plain("juliet"),
      UA("dev-1") + "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>",
    );
    const tokenEl = first.getChild("token", "urn:xmpp:fast:0")!;
    const token = tokenEl.attrs.token!;
    assert.ok(token.length >= 32);
    assert.ok(Date.parse(tokenEl.attrs.expiry!) > Date.now() + 20 * 86400_000);
    // The token is not in the database, in any form a login could use.
    const db = await Deno.readFile(`${t.dataDir}/cadence.sqlite`).catch(() => new Uint8Array());
    const wal = await Deno.readFile(`${t.dataDir}/cadence.sqlite-wal`).catch(() =>
      new Uint8Array()
    );
    const text = new TextDecoder().decode(db) + new TextDecoder().decode(wal);
    assert.ok(!text.includes(token.slice("secret-token:fast-".length)), "the token is stored");

    const login = async (count: string, extra = "") => {
      const d = await open(true);
      return authenticate(
        d,
        "HT-SHA-256-NONE",
        await htResponse("juliet", token),
        UA("dev-1") + `<fast xmlns='urn:xmpp:fast:0' count='${count}'${extra}/>`,
      );
    };
    const ok = await login("1");
    assert.equal(ok.name, "success");
    // The server proves it knew the token too.
    const responder = await hmac(token, "Responder");
    assert.equal(ok.getChildText("additional-data"), responder.toBase64());
    // The same count again is a replay.
    const replay = await login("1");
    assert.equal(replay.name, "failure");
    assert.ok(replay.getChild("not-authorized", "urn:ietf:params:xml:ns:xmpp-sasl"));
    // A wrong token.
    const d = await open(true);
    const wrong = await authenticate(
      d,
      "HT-SHA-256-NONE",
      await htResponse("juliet", "secret-token:fast-guess"),
      UA("dev-1") + "<fast xmlns='urn:xmpp:fast:0' count='9'/>",
    );
    assert.equal(wrong.name, "failure");
    // Invalidate: that login works, the next does not.
    assert.equal((await login("2", " invalidate='true'")).name, "success");
    assert.equal((await login("3")).name, "failure");
    // A new token, then a password change: revoked.
    const e = await open(true);
    const next = await authenticate(
      e,
      "PLAIN",
      plain("juliet"),
      UA("dev-1") + "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>",
    );
    const token2 = next.getChild("token", "urn:xmpp:fast:0")!.attrs.token!;
    await t.server.users("localhost")!.setPassword("juliet", "new pw");
    const f = await open(true);
    const revoked = await authenticate(
      f,
      "HT-SHA-256-NONE",
      await htResponse("juliet", token2),
      UA("dev-1") + "<fast xmlns='urn:xmpp:fast:0' count='1'/>",
    );
    assert.equal(revoked.name, "failure");
  });
});

Deno.test("fast: a token is not offered or accepted on an unencrypted stream", async () => {
  await withServer({}, async (_t, open) => {
    const c = await open();
    const f = await authenticate(
      c,
      "HT-SHA-256-NONE",
      "AAAA",
      UA("dev") + "<fast xmlns='urn:xmpp:fast:0'/>",
    );
    assert.ok(f.getChild("invalid-mechanism", "urn:ietf:params:xml:ns:xmpp-sasl"));
  });
});

Deno.test("@xmpp/client gets a FAST token with its password login and logs in with the token next time", async () => {
  const { client, xml } = await import("@xmpp/client");
  const userAgent = xml("user-agent", { id: crypto.randomUUID() });
  Deno.env.set("NODE_TLS_REJECT_UNAUTHORIZED", "0"); // the test server's certificate is self-signed
  const t = await startTestServer();
  await t.server.users("localhost")!.createUser("juliet", "pw");
  let password = "pw";
  const xmpp = client({
    service: `xmpps://127.0.0.1:${t.tlsPort}`,
    domain: "localhost",
    resource: "app",
    credentials: async (
      authenticate: (c: unknown, m: string, ua: unknown) => Promise<void>,
      mechanisms: string[],
      fast: { fetch(): Promise<unknown> } | null,
    ) => {
      const token = await fast?.fetch();
      await authenticate({ username: "juliet", password, token }, mechanisms[0], userAgent);
    },
  });
  xmpp.reconnect.stop();
  xmpp.on("error", () => {});
  const tokens = () => t.server.storage.open("localhost", "fast_tokens", "map");
  const clients = () => t.server.storage.open("localhost", "fast_clients", "keyval");
  try {
    await xmpp.start();
    // A token was handed out with the password login: in the "next" slot.
    const [client1] = (await clients().get("juliet")) as string[];
    const before = (await tokens().get("juliet", client1)) as Record<string, unknown>;
    assert.ok(before.next && !before.current);
    await xmpp.stop();
    // Next time, with a wrong password on hand: only the token can work.
    password = "not the password";
    await xmpp.start();
    const after = (await tokens().get("juliet", client1)) as Record<string, unknown>;
    assert.ok(after.current && !after.next, "the token was used");
    await xmpp.stop();
  } finally {
    await xmpp.stop().catch(() => {});
    await t.stop();
  }
});

Deno.test("fast: a FAST key file cut short is refused at start, with what to do", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-fastkey-" });
  try {
    const keyFile = `${dir}/fast.key`;
    await Deno.writeFile(keyFile, new Uint8Array(5));
    await assert.rejects(
      () => startTestServer({ ...PLAIN, fast_key_file: keyFile }),
      (e: Error) => e.message.includes(`FAST key file ${keyFile} holds 5 bytes`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
