/** Stopping the server closes every stream properly before the process goes. */
import assert from "node:assert/strict";
import { RawClient, streamHeader } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

Deno.test("server stop closes authenticated and unauthenticated streams with </stream:stream>", async () => {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  await t.server.users("localhost")!.createUser("juliet", "pw");
  const bound = await RawClient.connect(t.port);
  const fresh = await RawClient.connect(t.port);
  try {
    await bound.login("juliet", "pw");
    fresh.send(streamHeader());
    await fresh.waitFor(/<\/stream:features>/);
    await t.server.stop("maintenance");
    for (const c of [bound, fresh]) {
      await c.waitFor(
        /<stream:error><system-shutdown [^>]*\/><text [^>]*>maintenance<\/text><\/stream:error><\/stream:stream>/,
      );
      await c.waitClosed();
    }
    assert.equal(t.server.sessions.full.size, 0);
  } finally {
    bound.close();
    fresh.close();
    await Deno.remove(t.dataDir, { recursive: true });
  }
});

Deno.test("direct TLS (XEP-0368) serves a stream from the first byte", async () => {
  const t = await startTestServer();
  const c = await RawClient.connectTls(t.tlsPort);
  try {
    c.send(streamHeader());
    const features = (await c.waitFor(/<stream:features>.*<\/stream:features>/s))[0];
    assert.match(features, /<mechanism>SCRAM-SHA-256-PLUS<\/mechanism>/);
    assert.doesNotMatch(features, /starttls/);
  } finally {
    c.close();
    await t.stop();
  }
});
