/**
 * A client that does not read must not freeze its own session or the server:
 * the server keeps reading its socket, notices when it goes, caps what waits
 * for it, and loses none of the messages it could not write.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const BASE = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  limits: false as const,
  offline_message_limit: 100_000,
};

function flood(from: RawClient, to: string, n: number, prefix = "m"): void {
  const body = "x".repeat(2000);
  let burst = "";
  for (let i = 0; i < n; i++) {
    burst += `<message to='${to}' type='chat' id='${prefix}${i}'><body>${body}</body></message>`;
  }
  from.send(burst);
}

async function until(what: string, test: () => boolean | Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!await test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function offlineCount(t: TestServer, user: string): Promise<number> {
  return await t.server.storage.open("localhost", "offline", "archive").count(user);
}

Deno.test("a recipient that does not read: its own stanzas are still read, and its going is noticed", async () => {
  const t = await startTestServer({ ...BASE, max_send_buffer_size: 64 << 20 });
  const users = t.server.users("localhost")!;
  await users.createUser("juliet", "pw");
  await users.createUser("romeo", "pw");
  const juliet = await RawClient.connect(t.port);
  const romeo = await RawClient.connect(t.port);
  try {
    await juliet.login("juliet", "pw", "j");
    await romeo.login("romeo", "pw", "r");
    romeo.send("<presence/>");
    await romeo.waitFor(/<presence/);
    romeo.socket.pause(); // romeo stops reading
    flood(juliet, "romeo@localhost/r", 8000); // 16 MB: more than the kernel buffers take
    // Wait until romeo's output has backed up on the server.
    await until("romeo's output backs up", () => {
      const s = t.server.sessions.full.get("romeo@localhost/r");
      return s !== undefined && s.conn.socket.writableLength > 1 << 20;
    });
    // Romeo's own stanzas are still read and routed.
    juliet.clear();
    romeo.send("<message to='juliet@localhost/j' type='chat' id='back'><body>hi</body></message>");
    // (Behind juliet's 8,000 messages in the server's queue: slow on a busy machine.)
    await juliet.waitFor(/id="back"/, 30_000);
    // Romeo goes away without reading: the server notices, the session ends.
    romeo.socket.destroy();
    await until("romeo's session ends", () => !t.server.sessions.full.has("romeo@localhost/r"));
    // What had not been written out is in romeo's offline storage, not lost.
    assert.ok(await offlineCount(t, "romeo") > 0);
    // And later messages go there too.
    juliet.send("<message to='romeo@localhost/r' type='chat' id='later'><body>b</body></message>");
    const store = t.server.storage.open("localhost", "offline", "archive");
    await until(
      "the later message is stored",
      async () => (await store.find("romeo")).some((i) => i.stanza.attrs.id === "later"),
      30_000, // behind thousands of bounced messages on a busy machine
    );
    assert.doesNotMatch(juliet.received, /type="error"/);
  } finally {
    juliet.close();
    romeo.close();
    await t.stop();
  }
});

Deno.test("past max_send_buffer_size the stream is closed, and every message is either read or stored", async () => {
  // c2s_close_timeout: romeo must have time to read what waits for him, even on a busy machine.
  const t = await startTestServer({
    ...BASE,
    max_send_buffer_size: 256 * 1024,
    c2s_close_timeout: 60,
  });
  const users = t.server.users("localhost")!;
  await users.createUser("juliet", "pw");
  await users.createUser("romeo", "pw");
  const juliet = await RawClient.connect(t.port);
  const romeo = await RawClient.connect(t.port);
  try {
    await juliet.login("juliet", "pw", "j");
    await romeo.login("romeo", "pw", "r");
    romeo.send("<presence/>");
    await romeo.waitFor(/<presence/);
    romeo.clear();
    romeo.socket.pause();
    const n = 10_000; // 20 MB: more than the kernel's buffers and the cap
    flood(juliet, "romeo@localhost/r", n);
    await until(
      "romeo's session is closed",
      () => !t.server.sessions.full.has("romeo@localhost/r"),
      30_000,
    );
    // Juliet's stream is fine and none of her messages bounced.
    juliet.send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await juliet.waitFor(/id="p"/, 30_000);
    assert.doesNotMatch(juliet.received, /type="error"/);
    // Romeo reads what reached him: the messages, then the stream error.
    romeo.socket.resume();
    await romeo.waitFor(/<policy-violation/, 30_000);
    await romeo.waitClosed(10_000);
    const read = new Set(
      [...romeo.received.matchAll(/<message [^>]*id="(m\d+)"/g)].map((m) => m[1]),
    );
    await until(
      "every message is read or stored",
      async () => read.size + await offlineCount(t, "romeo") === n,
      30_000,
    );
    // Stored ones are exactly those not read: none twice, none lost.
    const stored = await t.server.storage.open("localhost", "offline", "archive").find("romeo");
    for (const item of stored) {
      assert.ok(!read.has(item.stanza.attrs.id!), `${item.stanza.attrs.id} twice`);
    }
    assert.equal(read.size + stored.length, n);
  } finally {
    juliet.close();
    romeo.close();
    await t.stop();
  }
});

Deno.test("output nobody takes for send_timeout closes the stream, below the cap too", async () => {
  const t = await startTestServer({ ...BASE, send_timeout: 1, max_send_buffer_size: 64 << 20 });
  const users = t.server.users("localhost")!;
  await users.createUser("juliet", "pw");
  await users.createUser("romeo", "pw");
  const juliet = await RawClient.connect(t.port);
  const romeo = await RawClient.connect(t.port);
  try {
    await juliet.login("juliet", "pw", "j");
    await romeo.login("romeo", "pw", "r");
    romeo.send("<presence/>");
    await romeo.waitFor(/<presence/);
    romeo.socket.pause();
    // Enough to fill the kernel's buffers; far below max_send_buffer_size.
    flood(juliet, "romeo@localhost/r", 8000);
    await until("romeo's output backs up", () => {
      const s = t.server.sessions.full.get("romeo@localhost/r");
      return s !== undefined && s.conn.socket.writableLength > 1 << 20;
    });
    assert.ok(t.server.sessions.full.has("romeo@localhost/r"));
    await until(
      "romeo's stalled session is closed",
      () => !t.server.sessions.full.has("romeo@localhost/r"),
      20_000,
    );
  } finally {
    juliet.close();
    romeo.close();
    await t.stop();
  }
});
