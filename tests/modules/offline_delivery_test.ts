/**
 * Offline messages leave storage only once written out completely: a
 * connection that dies during delivery, or a server killed during it, loses
 * none of them.
 */
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";
import { serverProcess } from "../helpers/process.ts";

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  limits: false as const,
  offline_message_limit: 10_000,
};
const N = 3000;

/** N messages of 8 KB: 24 MB, more than the kernel's socket buffers take in. */
function messages(to: string): string {
  const body = "x".repeat(8000);
  let s = "";
  for (let i = 0; i < N; i++) {
    s += `<message to='${to}' type='chat' id='o${i}'><body>${body}</body></message>`;
  }
  return s;
}

/** Counts the distinct messages a client received, scanning only what is new each time. */
function counter(c: RawClient): () => number {
  const seen = new Set<string>();
  let at = 0;
  return () => {
    const re = /<message [^>]*id="(o\d+)"/g;
    re.lastIndex = at;
    for (let m; (m = re.exec(c.received));) {
      seen.add(m[1]);
      at = re.lastIndex;
    }
    return seen.size;
  };
}

async function until(what: string, test: () => boolean | Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!await test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test("a connection that dies while offline messages are delivered loses none of them", async () => {
  const t = await startTestServer(PLAIN);
  const users = t.server.users("localhost")!;
  await users.createUser("juliet", "pw");
  await users.createUser("romeo", "pw");
  const store = t.server.storage.open("localhost", "offline", "archive");
  try {
    const juliet = await RawClient.connect(t.port);
    await juliet.login("juliet", "pw");
    juliet.send(messages("romeo@localhost"));
    await until("all are stored", async () => await store.count("romeo") === N, 60_000);
    // Romeo comes online but reads nothing, then his connection dies.
    const first = await RawClient.connect(t.port);
    await first.login("romeo", "pw", "r1");
    first.socket.pause();
    first.send("<presence/>");
    await until("delivery is under way", () => {
      const s = t.server.sessions.full.get("romeo@localhost/r1");
      return s !== undefined && s.conn.socket.writableLength > 0;
    });
    first.socket.destroy();
    await until("the session is gone", () => !t.server.sessions.full.has("romeo@localhost/r1"));
    // Next time he gets every one of them, and then they leave storage.
    const second = await RawClient.connect(t.port);
    await second.login("romeo", "pw", "r2");
    second.send("<presence/>");
    const count = counter(second);
    await until("all arrive", () => count() === N, 30_000);
    await until("storage is empty", async () => await store.count("romeo") === 0);
    juliet.close();
    second.close();
  } finally {
    await t.stop();
  }
});

Deno.test("a server killed while offline messages are delivered loses none of them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-offline-" });
  const { start, connect } = await serverProcess(dir, PLAIN, ["juliet", "romeo"]);
  let server = start();
  try {
    const juliet = await connect();
    await juliet.login("juliet", "pw");
    juliet.send(messages("romeo@localhost"));
    // Stored once the server has answered a ping sent after them (stanzas are handled in order).
    juliet.send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await juliet.waitFor(/id="p"/, 60_000);
    juliet.close();
    // Romeo comes online, reads nothing, and the server is killed mid-delivery.
    const first = await connect();
    await first.login("romeo", "pw", "r1");
    first.socket.pause();
    first.send("<presence/>");
    // Long enough for a server that does not wait for the client to have removed them all.
    await new Promise((r) => setTimeout(r, 3000));
    server.kill("SIGKILL");
    await server.status;
    first.close();
    server = start();
    const second = await connect();
    await second.login("romeo", "pw", "r2");
    second.send("<presence/>");
    const count = counter(second);
    await until("all arrive after the restart", () => count() === N, 60_000);
    second.close();
  } finally {
    server.kill("SIGKILL");
    await server.status;
    await Deno.remove(dir, { recursive: true });
  }
});
