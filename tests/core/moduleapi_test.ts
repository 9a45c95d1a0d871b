/** The Module object: option getters, shared state, timers, sendIq. */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";
import { iq } from "../../core/xml/stanza.ts";
import { StanzaError } from "../../core/xml/stanza.ts";
import { parsePeriod } from "../../core/moduleapi.ts";

Deno.test("option getters read the host, then the global value, and coerce like Prosody", async () => {
  const t = await startTestServer({
    some_number: "42",
    some_list: "single",
    some_flag: "false",
    admins: ["root@localhost"],
    virtual_hosts: { localhost: { some_number: 7, admins: ["host@localhost"] } },
  } as Record<string, unknown>);
  try {
    const m = t.server.modules.get("localhost", "ping")!;
    assert.equal(m.getOptionNumber("some_number", 0), 7);
    assert.equal(m.getOptionNumber("missing", 3), 3);
    assert.equal(m.getOptionInteger("some_number", 0, { max: 5 }), 5);
    assert.deepEqual(m.getOptionArray("some_list"), ["single"]);
    assert.equal(m.getOptionBoolean("some_flag"), false);
    assert.deepEqual([...m.getOptionInheritedSet("admins")].sort(), [
      "host@localhost",
      "root@localhost",
    ]);
    assert.equal(m.getOptionEnum("conflict_resolve", "kick_old", ["kick_new"]), "kick_old");
    assert.equal(parsePeriod("2 days"), 172800);
    assert.equal(parsePeriod("10 minutes"), 600);
    assert.equal(parsePeriod("never"), Infinity);
    // Prosody's short forms, as in archive_expires_after.
    assert.equal(parsePeriod("1d"), 86400);
    assert.equal(parsePeriod("1w"), 604800);
    assert.equal(parsePeriod("1m"), 2629746);
    assert.equal(parsePeriod("1y"), 31556952);
    assert.equal(parsePeriod("1 fortnight"), undefined);
    assert.equal(m.getOptionPeriod("c2s_timeout", 1), 300);
    const a = m.shared("counters", () => ({ n: 0 }));
    a.n++;
    const other = t.server.modules.get("localhost", "disco")!;
    assert.equal(other.shared("/localhost/ping/counters", () => ({ n: 100 })).n, 1);
  } finally {
    await t.stop();
  }
});

Deno.test("addTimer re-arms when the callback returns a number; stop() stops it", async () => {
  const t = await startTestServer();
  try {
    const m = t.server.modules.get("localhost", "ping")!;
    let runs = 0;
    const timer = m.addTimer(0.01, () => ++runs < 3 ? 0.01 : undefined);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(runs, 3);
    let never = 0;
    m.addTimer(0.05, () => void never++).stop();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(never, 0);
    timer.stop();
  } finally {
    await t.stop();
  }
});

Deno.test("sendIq resolves with the result, rejects on an error reply and on timeout", async () => {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const c = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    const jid = await c.login("juliet", "pw", "r");
    const m = t.server.modules.get("localhost", "ping")!;

    const asked = m.sendIq(
      iq({ type: "get", id: "q1", from: "localhost", to: jid }).tag("query", { xmlns: "urn:x" }),
    );
    await c.waitFor(/<iq [^>]*id="q1"/);
    c.send("<iq type='result' id='q1' to='localhost'><answer xmlns='urn:x'/></iq>");
    const result = await asked;
    assert.equal(result.stanza.attrs.from, jid);
    assert.equal(result.stanza.getChild("answer", "urn:x")?.name, "answer");

    const refused = m.sendIq(iq({ type: "get", id: "q2", from: "localhost", to: jid }).tag("q"));
    await c.waitFor(/<iq [^>]*id="q2"/);
    c.send(
      "<iq type='error' id='q2' to='localhost'><error type='cancel'>" +
        "<feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
    );
    await assert.rejects(() => refused, (e: unknown) => {
      assert.ok(e instanceof StanzaError);
      assert.equal(e.condition, "feature-not-implemented");
      return true;
    });

    const silent = m.sendIq(iq({ type: "get", id: "q3", from: "localhost", to: jid }).tag("q"), {
      timeoutMs: 50,
    });
    await assert.rejects(() => silent, /remote-server-timeout/);
  } finally {
    c.close();
    await t.stop();
  }
});

Deno.test("sendIq: unique ids, replies only from the JID asked, full-JID senders, settled on unload", async () => {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const juliet = await RawClient.connect(t.port);
  const romeo = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await t.server.users("localhost")!.createUser("romeo", "pw");
    const julietJid = await juliet.login("juliet", "pw", "r");
    const romeoJid = await romeo.login("romeo", "pw", "r");
    const m = t.server.modules.get("localhost", "ping")!;

    // Two iqs without ids get two different ids.
    const a = iq({ type: "get", id: undefined as unknown as string, to: julietJid }).tag("q", {
      xmlns: "urn:x",
    });
    const b = iq({ type: "get", id: undefined as unknown as string, to: julietJid }).tag("q", {
      xmlns: "urn:x",
    });
    const pa = m.sendIq(a);
    const pb = m.sendIq(b);
    assert.ok(a.attrs.id && b.attrs.id && a.attrs.id !== b.attrs.id);
    // Romeo answers juliet's iq (he guessed the id): ignored.
    romeo.send(`<iq type='result' id='${a.attrs.id}' to='localhost'/>`);
    await new Promise((r) => setTimeout(r, 100));
    let settled = false;
    pa.then(() => settled = true, () => settled = true);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(settled, false, "a reply from another JID settled the iq");
    juliet.send(`<iq type='result' id='${a.attrs.id}' to='localhost'/>`);
    assert.equal((await pa).stanza.attrs.from, julietJid);
    juliet.send(`<iq type='result' id='${b.attrs.id}' to='localhost'/>`);
    await pb;

    // From a full JID: the host's ping answer comes back to it.
    const pong = await m.sendIq(
      iq({ type: "get", id: "fp", from: romeoJid, to: "localhost" }).tag("ping", {
        xmlns: "urn:xmpp:ping",
      }),
    );
    assert.equal(pong.stanza.attrs.from, "localhost");
    assert.doesNotMatch(romeo.received, /id="fp"/); // the module took it, not the session

    // Pending when the module unloads: rejected, not left hanging.
    const pending = m.sendIq(
      iq({ type: "get", id: "u1", to: julietJid }).tag("q", { xmlns: "urn:x" }),
    );
    await t.server.modules.unload("localhost", "ping");
    await assert.rejects(pending, /unloaded/);
    // The events it waited on are gone: a late reply is nobody's business.
    juliet.send("<iq type='result' id='u1' to='localhost'/>");
  } finally {
    juliet.close();
    romeo.close();
    await t.stop();
  }
});
