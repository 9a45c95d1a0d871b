/**
 * Stream management (XEP-0198) on the wire: enabling, counting, acks,
 * hibernation when the TCP connection is cut, resumption with every
 * unacknowledged stanza sent again in order, the end of the window, and the
 * errors for bad input.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const SM = "urn:xmpp:sm:3";
const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};

async function withServer(
  options: Record<string, unknown>,
  fn: (t: TestServer, clients: RawClient[]) => Promise<void>,
) {
  const t = await startTestServer({ ...PLAIN, ...options });
  const clients: RawClient[] = [];
  try {
    for (const u of ["juliet", "romeo", "tybalt"]) {
      await t.server.users("localhost")!.createUser(u, "pw");
    }
    await fn(t, clients);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
}

/** A logged-in client with available presence; SM enabled (resumable) when `sm`. */
async function online(t: TestServer, clients: RawClient[], user: string, sm = false) {
  const c = await RawClient.connect(t.port);
  clients.push(c);
  await c.login(user, "pw", "phone");
  let id = "";
  if (sm) {
    c.send(`<enable xmlns='${SM}' resume='true'/>`);
    id = (await c.waitFor(/<enabled [^>]*id="([^"]+)"/))[1];
  }
  c.send("<presence/>");
  await c.waitFor(/<presence /);
  c.clear();
  return { c, id };
}

function chat(to: string, id: string, body = id): string {
  return `<message to='${to}' type='chat' id='${id}'><body>${body}</body></message>`;
}

/** The ids of the messages received, in order. */
function messageIds(text: string): string[] {
  return [...text.matchAll(/<message [^>]*id="([^"]+)"/g)].map((m) => m[1]);
}

async function offlineIds(t: TestServer, user: string): Promise<string[]> {
  const items = await t.server.storage.open("localhost", "offline", "archive").find(user);
  return items.map((i) => i.stanza.attrs.id!);
}

async function until(what: string, test: () => boolean | Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!await test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("smacks: offered after authentication; enable needs a bound resource, and works once", async () => {
  await withServer({}, async (t, clients) => {
    const c = await RawClient.connect(t.port);
    clients.push(c);
    const features = await c.authenticate("juliet", "pw");
    assert.match(features, /<sm xmlns="urn:xmpp:sm:3"\/>/);
    c.send(`<enable xmlns='${SM}'/>`);
    await c.waitFor(
      /<failed xmlns="urn:xmpp:sm:3"><unexpected-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/,
    );
    c.clear();
    c.send(
      "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    );
    await c.waitFor(/<jid>/);
    c.send(`<enable xmlns='${SM}' resume='true'/>`);
    const enabled = (await c.waitFor(/<enabled [^>]*\/>/))[0];
    assert.match(enabled, /resume="true"/);
    assert.match(enabled, /max="600"/);
    assert.match(enabled, /id="[A-Za-z0-9_-]{24}"/);
    c.clear();
    c.send(`<enable xmlns='${SM}'/>`);
    await c.waitFor(/<failed xmlns="urn:xmpp:sm:3"><unexpected-request /);
  });
});

Deno.test("smacks: both sides count stanzas; the server asks for acks and drops what was acked", async () => {
  await withServer({}, async (t, clients) => {
    const { c: juliet } = await online(t, clients, "juliet", true);
    // The server asked for an ack after her presence came back to her: one stanza.
    juliet.send(`<a xmlns='${SM}' h='1'/>`);
    // Three stanzas from the client (nonzas do not count), then <r/>.
    for (let i = 0; i < 3; i++) {
      juliet.send(`<iq type='get' id='p${i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    }
    juliet.send(`<r xmlns='${SM}'/>`);
    // The initial presence was counted too: 1 + 3.
    await juliet.waitFor(/<a xmlns="urn:xmpp:sm:3" h="4"\/>/);
    // The server asks for an ack again after sending the pongs.
    await juliet.waitFor(/<r xmlns=.urn:xmpp:sm:3.\/>/);
    const sm = juliet.received;
    assert.ok(sm.indexOf('id="p0"') < sm.indexOf("<r "), "the request follows a stanza");
    // An ack for more than was sent closes the stream, as XEP-0198 §4 says.
    juliet.send(`<a xmlns='${SM}' h='99'/>`);
    await juliet.waitFor(
      /<undefined-condition xmlns=.urn:ietf:params:xml:ns:xmpp-streams.\/><handled-count-too-high xmlns=.urn:xmpp:sm:3. h=.99. send-count=.4.\/>/,
    );
    await juliet.waitClosed();
  });
});

Deno.test("smacks: a cut connection hibernates; resume sends every unacknowledged stanza again, in order", async () => {
  await withServer({}, async (t, clients) => {
    const { c: romeo } = await online(t, clients, "romeo");
    const { c: juliet, id } = await online(t, clients, "juliet", true);
    const to = "juliet@localhost/phone";
    // Juliet gets m1..m3 (after her own presence: 4 stanzas so far).
    for (const m of ["m1", "m2", "m3"]) romeo.send(chat(to, m));
    await juliet.waitFor(/id="m3"/);
    // She acknowledges her presence and m1 only, then her connection is cut (no </stream:stream>).
    juliet.send(`<a xmlns='${SM}' h='2'/>`);
    await new Promise((r) => setTimeout(r, 100));
    juliet.socket.resetAndDestroy();
    await until(
      "the session hibernates",
      () => t.server.sessions.full.get(to)?.hibernating === true,
    );
    // Meanwhile she is still online for romeo, and messages to her are kept.
    romeo.clear();
    for (const m of ["m4", "m5"]) romeo.send(chat(to, m));
    romeo.send("<presence type='probe' to='juliet@localhost'/>");
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(romeo.received, /type="unavailable"/);
    assert.doesNotMatch(romeo.received, /type="error"/);
    // She comes back on a new connection and resumes, having handled 2 stanzas.
    const again = await RawClient.connect(t.port);
    clients.push(again);
    await again.authenticate("juliet", "pw");
    again.send(`<resume xmlns='${SM}' previd='${id}' h='2'/>`);
    const resumed = (await again.waitFor(/<resumed [^>]*\/>/))[0];
    assert.match(resumed, new RegExp(`previd="${id}"`));
    assert.match(resumed, /h="1"/); // her initial presence
    await again.waitFor(/id="m5"/);
    // Everything she had not acknowledged, in order, nothing twice, nothing acked.
    const after = again.received.slice(again.received.indexOf("<resumed"));
    assert.deepEqual(messageIds(after).filter((m) => m.startsWith("m")), ["m2", "m3", "m4", "m5"]);
    assert.match(after, /<message [^>]*id="m4"[^]*<delay xmlns="urn:xmpp:delay" [^>]*stamp=/);
    // The session goes on: same full JID, counting where it was.
    assert.equal(t.server.sessions.full.get(to)?.hibernating, false);
    again.clear();
    romeo.send(chat(to, "m6"));
    await again.waitFor(/id="m6"/);
    again.send(`<a xmlns='${SM}' h='7'/>`); // her presence, m1..m6: all of it
    again.send(`<r xmlns='${SM}'/>`);
    await again.waitFor(/<a xmlns="urn:xmpp:sm:3" h="1"\/>/);
    assert.ok(!again.closed);
    assert.deepEqual(await offlineIds(t, "juliet"), []);
  });
});

Deno.test("smacks: when the window ends, what was not acknowledged goes to offline storage", async () => {
  await withServer({ smacks_hibernation_time: 1 }, async (t, clients) => {
    // Romeo and juliet see each other's presence.
    for (const [user, contact] of [["romeo", "juliet"], ["juliet", "romeo"]]) {
      await t.server.rosters.modify(user, "localhost", (r) => {
        r.items.set(`${contact}@localhost`, { subscription: "both", groups: [] });
        return [`${contact}@localhost`];
      });
    }
    const { c: romeo } = await online(t, clients, "romeo");
    const { c: juliet, id } = await online(t, clients, "juliet", true);
    const to = "juliet@localhost/phone";
    for (const m of ["m1", "m2"]) romeo.send(chat(to, m));
    await juliet.waitFor(/id="m2"/);
    juliet.socket.resetAndDestroy();
    await until(
      "the session hibernates",
      () => t.server.sessions.full.get(to)?.hibernating === true,
    );
    romeo.send(chat(to, "m3"));
    // After the window her session ends, and nothing is lost.
    await until("the session ends", () => !t.server.sessions.full.has(to), 5000);
    await until(
      "the messages are stored",
      async () => (await offlineIds(t, "juliet")).length === 3,
    );
    assert.deepEqual(await offlineIds(t, "juliet"), ["m1", "m2", "m3"]);
    assert.doesNotMatch(romeo.received, /type="error"/);
    // Resuming now fails, telling her how many of her stanzas the server had handled.
    const again = await RawClient.connect(t.port);
    clients.push(again);
    await again.authenticate("juliet", "pw");
    again.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
    await again.waitFor(
      /<failed xmlns="urn:xmpp:sm:3" h="1"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/,
    );
    // And she can bind a new session and get her messages as usual.
    again.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await again.waitFor(/<jid>/);
    again.send("<presence/>");
    await again.waitFor(/id="m3"/);
  });
});

Deno.test("smacks: resume with a wrong, foreign or premature id fails and leaves the session as it was", async () => {
  await withServer({}, async (t, clients) => {
    const { c: juliet, id } = await online(t, clients, "juliet", true);
    juliet.socket.resetAndDestroy();
    const to = "juliet@localhost/phone";
    await until(
      "the session hibernates",
      () => t.server.sessions.full.get(to)?.hibernating === true,
    );
    const notFound =
      /<failed xmlns="urn:xmpp:sm:3"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/;
    // An id nobody has.
    const a = await RawClient.connect(t.port);
    clients.push(a);
    await a.authenticate("juliet", "pw");
    a.send(`<resume xmlns='${SM}' previd='nonsense' h='0'/>`);
    await a.waitFor(notFound);
    // Another account's id: the same answer, nothing taken over, no count revealed.
    const b = await RawClient.connect(t.port);
    clients.push(b);
    await b.authenticate("tybalt", "pw");
    b.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
    await b.waitFor(notFound);
    // Before authentication.
    const c = await RawClient.connect(t.port);
    clients.push(c);
    c.send(
      "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' " +
        "xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    await c.waitFor(/<\/stream:features>/);
    c.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
    await c.waitFor(/<failed xmlns="urn:xmpp:sm:3"><not-authorized /);
    // An h larger than what was sent: that stream is closed, the session is untouched.
    const d = await RawClient.connect(t.port);
    clients.push(d);
    await d.authenticate("juliet", "pw");
    d.send(`<resume xmlns='${SM}' previd='${id}' h='7'/>`);
    await d.waitFor(/<handled-count-too-high xmlns=.urn:xmpp:sm:3. h=.7. send-count=.1.\/>/);
    await d.waitClosed();
    const session = t.server.sessions.full.get(to);
    assert.equal(session?.hibernating, true);
    // The rightful client still resumes.
    const e = await RawClient.connect(t.port);
    clients.push(e);
    await e.authenticate("juliet", "pw");
    e.send(`<resume xmlns='${SM}' previd='${id}' h='1'/>`);
    await e.waitFor(/<resumed /);
    assert.equal(t.server.sessions.full.get(to), session);
  });
});

Deno.test("smacks: resuming while the old connection is still open takes it over and closes the old one", async () => {
  await withServer({}, async (t, clients) => {
    const { c: romeo } = await online(t, clients, "romeo");
    const { c: old, id } = await online(t, clients, "juliet", true);
    const to = "juliet@localhost/phone";
    const fresh = await RawClient.connect(t.port);
    clients.push(fresh);
    await fresh.authenticate("juliet", "pw");
    fresh.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
    await fresh.waitFor(/<resumed /);
    await old.waitClosed();
    romeo.send(chat(to, "after"));
    await fresh.waitFor(/id="after"/);
    assert.doesNotMatch(old.received, /id="after"/);
  });
});

Deno.test("smacks: a client that never acknowledges is stopped at smacks_max_queue_size, losing nothing", async () => {
  await withServer({ smacks_max_queue_size: 5 }, async (t, clients) => {
    const { c: romeo } = await online(t, clients, "romeo");
    const { c: juliet } = await online(t, clients, "juliet", true);
    const to = "juliet@localhost/phone";
    // Her initial presence echo is unacknowledged already: 1 + 5 > 5 at m5, and m6
    // comes after the session ended.
    for (let i = 1; i <= 6; i++) romeo.send(chat(to, `m${i}`));
    await juliet.waitFor(/<policy-violation [^]*Too many unacknowledged stanzas/);
    await juliet.waitClosed();
    // Everything she did not acknowledge is in her offline storage, in order.
    await until(
      "the messages are stored",
      async () => (await offlineIds(t, "juliet")).length === 6,
    );
    assert.deepEqual(await offlineIds(t, "juliet"), ["m1", "m2", "m3", "m4", "m5", "m6"]);
  });
});

Deno.test("smacks: a hibernating session ends at smacks_max_queue_bytes, losing nothing", async () => {
  await withServer({ smacks_max_queue_bytes: 8192 }, async (t, clients) => {
    const { c: romeo } = await online(t, clients, "romeo");
    const { c: juliet, id } = await online(t, clients, "juliet", true);
    const to = "juliet@localhost/phone";
    juliet.socket.resetAndDestroy();
    await until(
      "the session hibernates",
      () => t.server.sessions.full.get(to)?.hibernating === true,
    );
    // 3 KB each: the third takes the queue past 8 KiB (the count cap is far).
    const big = "x".repeat(3000);
    for (const m of ["b1", "b2"]) romeo.send(chat(to, m, big));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(t.server.sessions.full.get(to)?.hibernating, true, "below the cap it waits");
    romeo.send(chat(to, "b3", big));
    await until("the session ends", () => !t.server.sessions.full.has(to));
    await until(
      "the messages are stored",
      async () => (await offlineIds(t, "juliet")).length === 3,
    );
    assert.deepEqual(await offlineIds(t, "juliet"), ["b1", "b2", "b3"]);
    const again = await RawClient.connect(t.port);
    clients.push(again);
    await again.authenticate("juliet", "pw");
    again.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
    await again.waitFor(/<failed xmlns="urn:xmpp:sm:3"[^>]*><item-not-found /);
  });
});

/** Answers the server's `<r/>` with the number of stanzas received so far, until stopped. */
function autoAck(c: RawClient): () => void {
  let on = true;
  let answered = 0;
  (async () => {
    while (on && !c.closed) {
      const requests = c.received.match(/<r xmlns=.urn:xmpp:sm:3.\/>/g)?.length ?? 0;
      if (requests > answered) {
        answered = requests;
        const h = c.received.match(/<(message|presence|iq)[ >]/g)?.length ?? 0;
        c.send(`<a xmlns='${SM}' h='${h}'/>`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return () => on = false;
}

Deno.test("smacks: offline messages leave storage once acknowledged, in batches below the queue cap", async () => {
  await withServer({ offline_message_limit: 1000 }, async (t, clients) => {
    const { c: romeo } = await online(t, clients, "romeo");
    const n = 700;
    let burst = "";
    for (let i = 0; i < n; i++) burst += chat("juliet@localhost", `o${i}`);
    romeo.send(burst);
    await until("all are stored", async () => (await offlineIds(t, "juliet")).length === n);
    // A client that enables stream management, gets the first batch and drops
    // without acknowledging anything: all of it stays stored.
    const first = await RawClient.connect(t.port);
    clients.push(first);
    await first.login("juliet", "pw", "a");
    first.send(`<enable xmlns='${SM}'/>`);
    await first.waitFor(/<enabled /);
    first.send("<presence/>");
    await first.waitFor(/<r xmlns=/);
    const got = messageIds(first.received).length;
    assert.ok(got > 0 && got <= 101, `the first batch only, not ${got}`);
    first.socket.resetAndDestroy();
    await until("the session ends", () => !t.server.sessions.full.has("juliet@localhost/a"));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await offlineIds(t, "juliet")).length, n);
    // A client that acknowledges gets everything, in order, and storage empties.
    const second = await RawClient.connect(t.port);
    clients.push(second);
    await second.login("juliet", "pw", "b");
    second.send(`<enable xmlns='${SM}'/>`);
    await second.waitFor(/<enabled /);
    const stop = autoAck(second);
    second.send("<presence/>");
    await second.waitFor(new RegExp(`id="o${n - 1}"`), 20_000);
    await until("storage is empty", async () => (await offlineIds(t, "juliet")).length === 0);
    stop();
    const ids = messageIds(second.received).filter((m) => m.startsWith("o"));
    assert.deepEqual(ids, Array.from({ length: n }, (_, i) => `o${i}`));
    assert.ok(!second.closed);
  });
});

Deno.test("smacks: at shutdown, hibernating sessions hand what they hold to offline storage", async () => {
  const t = await startTestServer(PLAIN);
  const clients: RawClient[] = [];
  let restarted: TestServer | undefined;
  try {
    for (const u of ["juliet", "romeo"]) await t.server.users("localhost")!.createUser(u, "pw");
    const { c: romeo } = await online(t, clients, "romeo");
    const { c: juliet } = await online(t, clients, "juliet", true);
    const to = "juliet@localhost/phone";
    juliet.socket.resetAndDestroy();
    await until(
      "the session hibernates",
      () => t.server.sessions.full.get(to)?.hibernating === true,
    );
    for (const m of ["m1", "m2"]) romeo.send(chat(to, m));
    romeo.send(`<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await romeo.waitFor(/id="sync"/);
    romeo.close();
    await t.stop({ keepData: true });
    restarted = await startTestServer(PLAIN, t.dataDir);
    assert.deepEqual(await offlineIds(restarted, "juliet"), ["m1", "m2"]);
  } finally {
    for (const c of clients) c.close();
    if (restarted) await restarted.stop();
    else await t.stop().catch(() => {});
  }
});
