/** A session's stanzas are handled strictly in order, even when handlers await. */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

const SLOW_MODULE = `
export default (module) => {
  module.hook("iq-get/host/urn:example:slow:slow", async ({ origin, stanza }) => {
    // Earlier stanzas wait longer: out-of-order processing would show.
    const n = Number(stanza.attrs.id);
    await new Promise((r) => setTimeout(r, (20 - n) * 3));
    origin.send(stanza.reply());
    return true;
  });
};
`;

Deno.test("stanzas from one session are processed in order across awaits; others are not held up", async () => {
  const plugins = await Deno.makeTempDir({ prefix: "cadence-slow-" });
  await Deno.writeTextFile(`${plugins}/slow.ts`, SLOW_MODULE);
  const t = await startTestServer({
    plugin_paths: [plugins],
    modules_enabled: ["slow", "saslauth", "tls", "ping"],
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const a = await RawClient.connect(t.port);
  const b = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await a.login("juliet", "pw", "a");
    await b.login("juliet", "pw", "b");
    let burst = "";
    for (let i = 0; i < 20; i++) {
      burst += `<iq type='get' id='${i}' to='localhost'><slow xmlns='urn:example:slow'/></iq>`;
    }
    a.send(burst);
    // Another session's ping is answered while a's slow stanzas are in progress.
    b.send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await b.waitFor(/id="p"/);
    assert.doesNotMatch(a.received, /id="19"/);
    await a.waitFor(/id="19"/);
    const ids = [...a.received.matchAll(/<iq id="(\d+)"/g)].map((m) => Number(m[1]));
    assert.deepEqual(ids, Array.from({ length: 20 }, (_, i) => i));
    // Reading resumes afterwards: a later stanza is still answered.
    a.send("<iq type='get' id='later' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await a.waitFor(/id="later"/);
  } finally {
    a.close();
    b.close();
    await t.stop();
    await Deno.remove(plugins, { recursive: true });
  }
});

Deno.test("a handler that throws gets the iq an internal-server-error and the session stays up", async () => {
  const plugins = await Deno.makeTempDir({ prefix: "cadence-throw-" });
  await Deno.writeTextFile(
    `${plugins}/thrower.ts`,
    `export default (module) => {
      module.hook("iq-get/host/urn:example:boom:boom", () => { throw new Error("boom"); });
      module.hook("iq-get/host/urn:example:boom:async", async () => { throw new Error("later"); });
    };`,
  );
  const t = await startTestServer({
    plugin_paths: [plugins],
    modules_enabled: ["thrower", "saslauth", "ping"],
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const c = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await c.login("juliet", "pw");
    c.send("<iq type='get' id='e1' to='localhost'><boom xmlns='urn:example:boom'/></iq>");
    c.send("<iq type='get' id='e2' to='localhost'><async xmlns='urn:example:boom'/></iq>");
    c.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await c.waitFor(/id="p1"/);
    assert.match(
      c.received,
      /<iq [^>]*id="e1"[^>]*type="error"><error type="wait"><internal-server-error /,
    );
    assert.match(
      c.received,
      /<iq [^>]*id="e2"[^>]*type="error"><error type="wait"><internal-server-error /,
    );
  } finally {
    c.close();
    await t.stop();
    await Deno.remove(plugins, { recursive: true });
  }
});

Deno.test("binding without a resource gets a server-chosen one", async () => {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const c = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    c.send(
      "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    await c.waitFor(/<\/stream:features>/);
    c.send(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
        btoa("\0juliet\0pw")
      }</auth>`,
    );
    await c.waitFor(/<success/);
    c.clear();
    c.send(
      "<stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    const features = (await c.waitFor(/<stream:features>.*<\/stream:features>/s))[0];
    assert.match(features, /<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"\/>/);
    assert.match(
      features,
      /<session xmlns="urn:ietf:params:xml:ns:xmpp-session"><optional\/><\/session>/,
    );
    c.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    const jid = (await c.waitFor(/<jid>([^<]+)<\/jid>/))[1];
    assert.match(jid, /^juliet@localhost\/.+/);
    c.send("<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    await c.waitFor(/<iq [^>]*id="s"[^>]*type="result"/);
  } finally {
    c.close();
    await t.stop();
  }
});

Deno.test("stanzas sent just before </stream:stream> are handled, not dropped with the session", async () => {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const c = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("alice", "pw");
    await t.server.users("localhost")!.createUser("bob", "pw");
    await c.login("alice", "pw");
    // Bob is offline: each message waits on storage, and the close comes behind them.
    let burst = "";
    for (let i = 0; i < 5; i++) {
      burst += `<message to='bob@localhost' type='chat' id='m${i}'><body>${i}</body></message>`;
    }
    c.send(burst + "</stream:stream>");
    await c.waitFor(/<\/stream:stream>/);
    await c.waitClosed();
    const stored = await t.server.storage.open("localhost", "offline", "archive").find("bob");
    assert.deepEqual(stored.map((i) => i.stanza.attrs.id), ["m0", "m1", "m2", "m3", "m4"]);
  } finally {
    c.close();
    await t.stop();
  }
});
