/**
 * Push notifications (XEP-0357) end to end: a component plays the app server
 * (it records each publish and answers it); a client registers, goes away
 * (offline, or hibernating under stream management), and a message for it
 * makes the server publish the summary form to the registered node.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { parseXml } from "../../core/xml/parser.ts";
import type { Stanza } from "../../core/xml/stanza.ts";

/** The app server: keeps every iq it gets; refuses the node "gone" with item-not-found. */
const APP_SERVER = `
export default (module) => {
  const got = [];
  module.exports.got = got;
  module.hook("iq/host", ({ origin, stanza }) => {
    if (stanza.attrs.type !== "set") return;
    got.push(stanza.toString());
    const node = stanza.getChild("pubsub", "http://jabber.org/protocol/pubsub")
      ?.getChild("publish")?.attrs.node;
    module.send(node === "gone"
      ? stanza.errorReply("cancel", "item-not-found")
      : stanza.reply());
    return true;
  });
};
`;

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};
const ENABLE = (node: string, secret = "s3cr3t") =>
  `<iq type='set' id='e-${node}'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='${node}'>` +
  "<x xmlns='jabber:x:data' type='submit'>" +
  "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
  `<field var='secret'><value>${secret}</value></field></x></enable></iq>`;

async function withPush(
  options: Record<string, unknown>,
  fn: (
    t: TestServer,
    pushes: () => Stanza[],
    login: (u: string) => Promise<RawClient>,
  ) => Promise<void>,
) {
  const plugins = await Deno.makeTempDir({ prefix: "cadence-push-" });
  await Deno.writeTextFile(`${plugins}/test_app_server.ts`, APP_SERVER);
  const t = await startTestServer({
    ...PLAIN,
    plugin_paths: [plugins],
    components: { "push.localhost": { module: "test_app_server" } },
    ...options,
  });
  const clients: RawClient[] = [];
  try {
    for (const u of ["juliet", "romeo"]) await t.server.users("localhost")!.createUser(u, "pw");
    const app = t.server.modules.get("push.localhost", "test_app_server")!;
    const pushes = () => (app.exports.got as string[]).map((x) => parseXml(x));
    await fn(t, pushes, async (user) => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(user, "pw", "phone");
      c.send("<presence/>");
      await c.waitFor(/<presence /);
      c.clear();
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await t.stop();
    await Deno.remove(plugins, { recursive: true });
  }
}

async function until(what: string, test: () => boolean, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The summary form's fields of a published notification. */
function summary(push: Stanza): Record<string, string> {
  const x = push.getChild("pubsub", "http://jabber.org/protocol/pubsub")!.getChild("publish")!
    .getChild("item")!.getChild("notification", "urn:xmpp:push:0")!.getChild("x", "jabber:x:data")!;
  return Object.fromEntries(
    x.tags().map((f) => [f.attrs.var!, f.getChildText("value", "jabber:x:data") ?? ""]),
  );
}

Deno.test("push: a user who is offline gets a notification per message, with the summary form", async () => {
  await withPush({}, async (t, pushes, login) => {
    const juliet = await login("juliet");
    juliet.send(
      "<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    await juliet.waitFor(/var="urn:xmpp:push:0"/);
    juliet.send(ENABLE("node1"));
    await juliet.waitFor(/id="e-node1"[^>]*type="result"|type="result"[^>]*id="e-node1"/);
    juliet.close();
    await until("juliet is offline", () => !t.server.sessions.full.has("juliet@localhost/phone"));
    const romeo = await login("romeo");
    romeo.send("<message to='juliet@localhost' type='chat'><body>wake up</body></message>");
    romeo.send("<message to='juliet@localhost' type='chat'><body>please</body></message>");
    // Chat states alone wake nobody.
    romeo.send(
      "<message to='juliet@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
    );
    await until("two notifications", () => pushes().length === 2);
    const [first, second] = pushes();
    assert.equal(first.attrs.from, "juliet@localhost");
    assert.equal(first.attrs.to, "push.localhost");
    assert.equal(
      first.getChild("pubsub", "http://jabber.org/protocol/pubsub")!.getChild("publish")!.attrs
        .node,
      "node1",
    );
    assert.deepEqual(summary(first), {
      FORM_TYPE: "urn:xmpp:push:summary",
      "message-count": "1",
      "last-message-sender": "romeo@localhost/phone",
    });
    assert.equal(summary(second)["message-count"], "2");
    // No body unless the operator allows it; the publish options go along.
    assert.doesNotMatch(first.toString(), /wake up/);
    const opts = first.getChild("pubsub", "http://jabber.org/protocol/pubsub")!.getChild(
      "publish-options",
    )!;
    assert.match(opts.toString(), /<value>s3cr3t<\/value>/);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(pushes().length, 2);
  });
});

Deno.test("push: a hibernating session's app is woken; with push_notification_with_body, the body too", async () => {
  await withPush({ push_notification_with_body: true }, async (t, pushes, login) => {
    const juliet = await login("juliet");
    juliet.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    await juliet.waitFor(/<enabled /);
    juliet.send(ENABLE("node2"));
    await juliet.waitFor(/id="e-node2"/);
    juliet.socket.resetAndDestroy();
    await until(
      "the session hibernates",
      () => t.server.sessions.full.get("juliet@localhost/phone")?.hibernating === true,
    );
    const romeo = await login("romeo");
    romeo.send(
      "<message to='juliet@localhost/phone' type='chat'><body>are you there?</body></message>",
    );
    await until("a notification", () => pushes().length === 1);
    assert.equal(summary(pushes()[0])["last-message-body"], "are you there?");
  });
});

Deno.test("push: disable removes a registration; an app server that refuses is dropped", async () => {
  await withPush({}, async (t, pushes, login) => {
    const juliet = await login("juliet");
    juliet.send(ENABLE("node3"));
    juliet.send(ENABLE("gone"));
    await juliet.waitFor(/id="e-gone"/);
    juliet.send(
      "<iq type='set' id='off'><disable xmlns='urn:xmpp:push:0' jid='push.localhost' node='node3'/></iq>",
    );
    await juliet.waitFor(/id="off"/);
    juliet.close();
    await until("juliet is offline", () => !t.server.sessions.full.has("juliet@localhost/phone"));
    const romeo = await login("romeo");
    romeo.send("<message to='juliet@localhost' type='chat'><body>one</body></message>");
    await until("one notification", () => pushes().length === 1);
    assert.equal(
      pushes()[0].getChild("pubsub", "http://jabber.org/protocol/pubsub")!.getChild("publish")!
        .attrs.node,
      "gone",
    );
    // The app server said the node is gone: no more notifications to it.
    await new Promise((r) => setTimeout(r, 200));
    romeo.send("<message to='juliet@localhost' type='chat'><body>two</body></message>");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(pushes().length, 1);
    // Bad registrations are refused.
    const again = await login("juliet");
    again.send(
      "<iq type='set' id='bad'><enable xmlns='urn:xmpp:push:0' jid='push.localhost'/></iq>",
    );
    await again.waitFor(/id="bad"[^]*<bad-request/);
  });
});
