/**
 * Authentication abuse: too many failures on one stream, password guessing
 * from one address across connections, telling unknown accounts from known
 * ones, the log line fail2ban reads, and turning mechanisms off.
 */
import assert from "node:assert/strict";
import { RawClient, streamHeader } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { setupLogging, stopLogging } from "../../core/log.ts";

const PLAIN = {
  authentication: "internal_hashed",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};

/** The fail2ban filter shipped in contrib/, as a JavaScript regular expression. */
const FILTER = await Deno.readTextFile(
  new URL("../../contrib/fail2ban/cadence.conf", import.meta.url),
);
const FAILREGEX = new RegExp(
  /^failregex = (.*)$/m.exec(FILTER)![1].replace("<HOST>", "(?<host>\\S+)"),
);
/** The same line, taken apart. */
const FAIL2BAN = /authentication failed for (\S+) from (\S+) \((\S+): (\S+)/;

function auth(user: string, password: string): string {
  return `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
    btoa(`\0${user}\0${password}`)
  }</auth>`;
}

async function opened(t: TestServer): Promise<RawClient> {
  const c = await RawClient.connect(t.port);
  c.send(streamHeader());
  await c.waitFor(/<\/stream:features>/);
  c.clear();
  return c;
}

Deno.test("three failures on a stream close it with policy-violation (RFC 6120 §6.4.5)", async () => {
  const t = await startTestServer({ ...PLAIN, limit_auth_max: 100 });
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    const c = await opened(t);
    for (let i = 0; i < 3; i++) {
      c.send(auth("juliet", "wrong"));
      await c.waitFor(new RegExp(`(<not-authorized/>.*){${i + 1}}`, "s"));
    }
    await c.waitFor(/<stream:error><policy-violation /);
    await c.waitClosed();
  } finally {
    await t.stop();
  }
});

Deno.test("failures are counted per address across connections, logged in one line for fail2ban", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-log-" });
  await setupLogging({ level: "info", file: `${dir}/cadence.log` });
  const t = await startTestServer({ ...PLAIN, limit_auth_max: 4, limit_auth_period: 60 });
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    // Four wrong guesses over two connections, as a guesser would.
    for (let conn = 0; conn < 2; conn++) {
      const c = await opened(t);
      for (let i = 0; i < 2; i++) {
        c.send(auth("juliet", `guess${conn}${i}`));
        await c.waitFor(new RegExp(`(<not-authorized/>.*){${i + 1}}`, "s"));
      }
      c.close();
    }
    // Now even the right password is not checked from this address.
    const c = await opened(t);
    c.send(auth("juliet", "pw"));
    await c.waitFor(/<failure [^>]*><temporary-auth-failure\/><text>Too many failed attempts/);
    assert.doesNotMatch(c.received, /<success/);
    c.close();
    await stopLogging(); // flush
    const lines = (await Deno.readTextFile(`${dir}/cadence.log`)).split("\n")
      .filter((l) => FAILREGEX.test(l));
    assert.equal(lines.length, 5, lines.join("\n"));
    assert.ok(lines.every((l) => FAILREGEX.exec(l)!.groups!.host === "127.0.0.1"));
    const [, jid, ip, mechanism, condition] = FAIL2BAN.exec(lines[0])!;
    assert.deepEqual([jid, ip, mechanism, condition], [
      "juliet@localhost",
      "127.0.0.1",
      "PLAIN",
      "not-authorized)",
    ]);
    assert.match(lines[0], /\[INF\]/);
    assert.match(lines[4], /temporary-auth-failure/);
  } finally {
    await stopLogging();
    await t.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PLAIN does the same work for an unknown account as for a known one", async () => {
  const t = await startTestServer({ ...PLAIN, limit_auth_max: 100 });
  const subtle = crypto.subtle;
  const original = subtle.deriveBits;
  let derivations = 0;
  subtle.deriveBits = function (...args: Parameters<typeof original>) {
    derivations++;
    return original.apply(subtle, args);
  };
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    const count = async (user: string) => {
      const c = await opened(t);
      derivations = 0;
      c.send(auth(user, "wrong"));
      await c.waitFor(/<not-authorized\/>/);
      c.close();
      return derivations;
    };
    const known = await count("juliet");
    const unknown = await count("nosuchuser");
    assert.ok(known > 0);
    assert.equal(unknown, known);
  } finally {
    subtle.deriveBits = original;
    await t.stop();
  }
});

Deno.test("disable_sasl_mechanisms takes mechanisms off the list and refuses them", async () => {
  const t = await startTestServer({
    ...PLAIN,
    disable_sasl_mechanisms: ["scram-sha-1", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"],
  });
  try {
    const tls = await RawClient.connectTls(t.tlsPort);
    tls.send(streamHeader());
    const features = (await tls.waitFor(/<mechanisms .*<\/mechanisms>/s))[0];
    assert.match(features, /<mechanism>SCRAM-SHA-256<\/mechanism>/);
    assert.match(features, /<mechanism>PLAIN<\/mechanism>/);
    assert.doesNotMatch(features, /-PLUS|SCRAM-SHA-1</);
    tls.send(
      "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1qLHI9eA==</auth>",
    );
    await tls.waitFor(/<invalid-mechanism\/>/);
    tls.close();
  } finally {
    await t.stop();
  }
});
