/** RFC 6121 §8.5 delivery rules with real sessions. */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};

async function online(t: TestServer, user: string, resource: string, priority?: number) {
  const c = await RawClient.connect(t.port);
  await c.login(user, "pw", resource);
  c.send(
    priority === undefined
      ? "<presence/>"
      : `<presence><priority>${priority}</priority></presence>`,
  );
  await c.waitFor(/<presence [^>]*from="[^"]+"/);
  c.clear();
  return c;
}

async function withUsers(fn: (t: TestServer, open: RawClient[]) => Promise<void>) {
  const t = await startTestServer(PLAIN);
  const open: RawClient[] = [];
  try {
    for (const u of ["romeo", "juliet"]) await t.server.users("localhost")!.createUser(u, "pw");
    await fn(t, open);
  } finally {
    for (const c of open) c.close();
    await t.stop();
  }
}

const chat = (to: string, body: string, type = "chat") =>
  `<message to='${to}' type='${type}' id='${body}'><body>${body}</body></message>`;

Deno.test("to a bare JID: the highest non-negative priority wins; chat ties go to all", async () => {
  await withUsers(async (t, open) => {
    const romeo = await online(t, "romeo", "r");
    const high = await online(t, "juliet", "high", 5);
    const low = await online(t, "juliet", "low", 1);
    const neg = await online(t, "juliet", "neg", -1);
    open.push(romeo, high, low, neg);
    romeo.send(chat("juliet@localhost", "one"));
    await high.waitFor(/<body>one<\/body>/);
    romeo.send(chat("juliet@localhost", "headline1", "headline"));
    await high.waitFor(/headline1/);
    await low.waitFor(/headline1/);
    low.send("<presence><priority>5</priority></presence>");
    await low.waitFor(/<priority>5<\/priority>/);
    romeo.send(chat("juliet@localhost", "two"));
    await high.waitFor(/<body>two<\/body>/);
    await low.waitFor(/<body>two<\/body>/);
    assert.doesNotMatch(low.received, /<body>one<\/body>/);
    assert.doesNotMatch(neg.received, /<body>(one|two|headline1)<\/body>/);
  });
});

Deno.test("to a full JID: that resource, else the bare rules; unknown users get service-unavailable", async () => {
  await withUsers(async (t, open) => {
    const romeo = await online(t, "romeo", "r");
    const juliet = await online(t, "juliet", "balcony");
    open.push(romeo, juliet);
    romeo.send(chat("juliet@localhost/balcony", "direct"));
    await juliet.waitFor(/<body>direct<\/body>/);
    romeo.send(chat("juliet@localhost/gone", "fallback"));
    await juliet.waitFor(/<body>fallback<\/body>/);
    romeo.send(chat("nobody@localhost", "lost"));
    const err = (await romeo.waitFor(/<message [^>]*id="lost".*?<\/message>/s))[0];
    assert.match(err, /type="error"/);
    assert.match(err, /<service-unavailable /);
    // Errors are never answered with errors.
    romeo.clear();
    romeo.send(
      "<message to='nobody@localhost' type='error' id='e'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
    );
    romeo.send(chat("juliet@localhost", "after"));
    await juliet.waitFor(/<body>after<\/body>/);
    assert.doesNotMatch(romeo.received, /id="e"/);
  });
});
