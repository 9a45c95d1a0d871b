/**
 * Stream management with an independent client (Debian's python3-slixmpp,
 * plugin xep_0198): its TCP connection is cut mid-session, a message arrives
 * while it is away, and it resumes the same session on a new connection and
 * gets that message — no new session, nothing lost.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startTestServer } from "../helpers/server.ts";
import { slixmppReady } from "../helpers/slixmpp.ts";
import { connectXmpp, xml } from "../helpers/xmppclient.ts";

const SCRIPT = fileURLToPath(new URL("./slixmpp_smacks.py", import.meta.url));

/** Lines a child prints, as they come. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let nl;
    while ((nl = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
  if (rest) yield rest;
}

Deno.test("slixmpp resumes its session after its connection is cut, and gets what came meanwhile", async () => {
  if (!await slixmppReady()) return;
  const t = await startTestServer();
  await t.server.users("localhost")!.createUser("alice", "alice pw");
  await t.server.users("localhost")!.createUser("bob", "bob pw");
  const bob = await connectXmpp(t.port, "bob", "bob pw", "desk");
  const child = new Deno.Command("/usr/bin/python3", {
    args: [SCRIPT, "alice@localhost/phone", "alice pw", String(t.port)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const seen: string[] = [];
  const errors = new Response(child.stderr).text();
  try {
    const say = (body: string) =>
      bob.send(
        xml("message", { to: "alice@localhost/phone", type: "chat" }, xml("body", {}, body)),
      );
    let session, resumedSession;
    for await (const line of lines(child.stdout)) {
      seen.push(line);
      if (line === "ENABLED") {
        session = t.server.sessions.full.get("alice@localhost/phone");
        await say("one");
      }
      if (line === "CUT") {
        // The server keeps her session, hibernating, and takes a message for her.
        const deadline = Date.now() + 5000;
        while (!t.server.sessions.full.get("alice@localhost/phone")?.hibernating) {
          if (Date.now() > deadline) throw new Error("the session never hibernated");
          await new Promise((r) => setTimeout(r, 20));
        }
        await say("two");
      }
      if (line.startsWith("GOT two")) {
        resumedSession = t.server.sessions.full.get("alice@localhost/phone");
      }
    }
    const out = seen.join("\n") + "\n" + await errors;
    assert.match(out, /RESUMED/, out);
    assert.doesNotMatch(out, /FAILED|TIMEOUT/, out);
    // The same session went on: one session start, one bound session object.
    assert.equal(seen.filter((l) => l.startsWith("SESSION")).length, 1, out);
    assert.ok(session);
    assert.equal(resumedSession, session);
    assert.match(out, /GOT one live/, out);
    assert.match(out, /GOT two delayed/, out); // sent while she was away, delay-stamped
    assert.match(out, /DONE/, out);
    assert.equal((await child.status).code, 0, out);
  } finally {
    await bob.stop();
    await t.stop();
  }
});
