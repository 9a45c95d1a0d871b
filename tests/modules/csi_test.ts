/**
 * Client State Indication (XEP-0352) on the wire: an inactive client gets
 * nothing that can wait, presence collapsed to the latest per contact, and
 * everything held at once, in order, when something matters.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};
const CHATSTATES = "http://jabber.org/protocol/chatstates";

async function withPair(
  options: Record<string, unknown>,
  fn: (t: TestServer, romeo: RawClient, juliet: RawClient) => Promise<void>,
) {
  const t = await startTestServer({ ...PLAIN, ...options });
  const clients: RawClient[] = [];
  try {
    for (const [user, contact] of [["romeo", "juliet"], ["juliet", "romeo"]]) {
      await t.server.users("localhost")!.createUser(user, "pw");
      await t.server.rosters.modify(user, "localhost", (r) => {
        r.items.set(`${contact}@localhost`, { subscription: "both", groups: [] });
        return [`${contact}@localhost`];
      });
    }
    const login = async (user: string) => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(user, "pw", "r");
      c.send("<presence/>");
      await c.waitFor(/<presence /);
      return c;
    };
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    await juliet.waitFor(/<presence [^>]*from="romeo@localhost\/r"/);
    juliet.send("<inactive xmlns='urn:xmpp:csi:0'/>");
    // (A ping round trip: the state change is handled before what follows.)
    juliet.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await juliet.waitFor(/id="sync"/);
    juliet.clear();
    await fn(t, romeo, juliet);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
}

const state = (s: string) =>
  `<message to='juliet@localhost/r' type='chat'><${s} xmlns='${CHATSTATES}'/></message>`;
const show = (s: string) => `<presence><show>${s}</show></presence>`;
const quiet = () => new Promise((r) => setTimeout(r, 300));

/** What the client received, as a list of short labels. */
function labels(text: string): string[] {
  return [...text.matchAll(/<(message|presence|iq)\b[^]*?(?:\/>|<\/\1>)/g)].map((m) => {
    const el = m[0];
    const show = /<show>(\w+)<\/show>/.exec(el)?.[1];
    const cs = new RegExp(`<(\\w+) xmlns="${CHATSTATES}"`).exec(el)?.[1];
    const body = /<body>([^<]*)<\/body>/.exec(el)?.[1];
    if (m[1] === "presence") return `presence:${show ?? "available"}`;
    if (m[1] === "iq") return `iq:${/id="([^"]+)"/.exec(el)![1]}`;
    return body !== undefined ? `body:${body}` : `state:${cs}`;
  });
}

Deno.test("csi: offered after authentication", async () => {
  const t = await startTestServer(PLAIN);
  const c = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    assert.match(await c.authenticate("juliet", "pw"), /<csi xmlns="urn:xmpp:csi:0"\/>/);
  } finally {
    c.close();
    await t.stop();
  }
});

Deno.test("csi: while inactive, presence and chat states wait; a message with a body lets them out in order", async () => {
  await withPair({}, async (_t, romeo, juliet) => {
    romeo.send(show("away"));
    romeo.send(state("composing"));
    romeo.send(show("dnd"));
    romeo.send(state("paused"));
    romeo.send(show("chat"));
    await quiet();
    assert.equal(juliet.received, "", "nothing reaches an inactive client");
    romeo.send("<message to='juliet@localhost/r' type='chat'><body>hi</body></message>");
    await juliet.waitFor(/<body>hi<\/body>/);
    // Only romeo's latest presence, where it last came; the rest in order; the body last.
    assert.deepEqual(labels(juliet.received), [
      "state:composing",
      "state:paused",
      "presence:chat",
      "body:hi",
    ]);
  });
});

Deno.test("csi: an iq, or becoming active, lets everything held out", async () => {
  await withPair({}, async (_t, romeo, juliet) => {
    romeo.send(state("composing"));
    romeo.send(
      "<iq type='get' id='v' to='juliet@localhost/r'><query xmlns='jabber:iq:version'/></iq>",
    );
    await juliet.waitFor(/id="v"/);
    assert.deepEqual(labels(juliet.received), ["state:composing", "iq:v"]);
    juliet.clear();
    romeo.send(show("away"));
    await quiet();
    assert.equal(juliet.received, "");
    juliet.send("<active xmlns='urn:xmpp:csi:0'/>");
    await juliet.waitFor(/<show>away<\/show>/);
    // Active again: everything flows at once.
    juliet.clear();
    romeo.send(state("gone"));
    await juliet.waitFor(/<gone /);
  });
});

Deno.test("csi: held stanzas past csi_queue_size go out anyway", async () => {
  await withPair({ csi_queue_size: 3 }, async (_t, romeo, juliet) => {
    for (const s of ["active", "composing", "paused"]) romeo.send(state(s));
    await quiet();
    assert.equal(juliet.received, "");
    romeo.send(state("inactive"));
    await juliet.waitFor(/<inactive /);
    assert.deepEqual(labels(juliet.received), [
      "state:active",
      "state:composing",
      "state:paused",
      "state:inactive",
    ]);
  });
});

Deno.test("csi: a session that ends while inactive loses no message with a body, stores no chat state", async () => {
  await withPair({}, async (t, romeo, juliet) => {
    romeo.send(state("composing"));
    await quiet();
    juliet.socket.destroy();
    const to = "juliet@localhost/r";
    for (let i = 0; i < 250 && t.server.sessions.full.has(to); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    romeo.send("<message to='juliet@localhost' type='chat'><body>later</body></message>");
    const store = t.server.storage.open("localhost", "offline", "archive");
    for (let i = 0; i < 100 && await store.count("juliet") === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const stored = await store.find("juliet");
    assert.deepEqual(stored.map((s) => s.stanza.getChildText("body")), ["later"]);
  });
});
