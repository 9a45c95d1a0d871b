/**
 * Findings of the review of the changes after 42dc432 outside the MUC room
 * logic: corked connections, PEP on one's own bare JID and another's,
 * legacy vCards read back, vCard4 sizes, the fan-out's shared children.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { Connection } from "../../core/net/connection.ts";
import { deliver, prepare } from "../../core/fanout.ts";
import type { Module } from "../../core/moduleapi.ts";
import type { Session } from "../../core/session.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { parseXml } from "../../core/xml/parser.ts";
import { element, message, type Stanza } from "../../core/xml/stanza.ts";

const PUBSUB = "http://jabber.org/protocol/pubsub";
const V4 = "urn:ietf:params:xml:ns:vcard-4.0";
const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};

type Login = (user: string, resource?: string) => Promise<RawClient>;

async function withServer(
  options: Record<string, unknown>,
  fn: (t: TestServer, login: Login) => Promise<void>,
) {
  const t = await startTestServer({ ...PLAIN, ...options });
  const clients: RawClient[] = [];
  try {
    for (const u of ["juliet", "romeo"]) await t.server.users("localhost")!.createUser(u, "pw");
    await fn(t, async (user, resource = "r") => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(user, "pw", resource);
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
}

let seq = 0;
async function iq(c: RawClient, type: string, inner: string, to = ""): Promise<Stanza> {
  const id = `fr${++seq}`;
  c.send(`<iq type='${type}' id='${id}'${to ? ` to='${to}'` : ""}>${inner}</iq>`);
  const m = await c.waitFor(new RegExp(`<iq [^>]*id="${id}"[^>]*?(/>|>[^]*?</iq>)`));
  return parseXml(m[0]);
}

const errorOf = (r: Stanza) =>
  r.getChild("error")?.tags().filter((c) => c.name !== "text").map((c) => c.name).join(" ");

const publish = (node: string, id: string, payload: string) =>
  `<pubsub xmlns='${PUBSUB}'><publish node='${node}'><item id='${id}'>${payload}</item>` +
  `</publish></pubsub>`;

// --- core/net/connection.ts ---------------------------------------------------------

/** A connection over a real socket pair; `got()` is how many bytes the peer read. */
async function socketPair(maxSendBuffer: number) {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
  const peer = net.connect(port, "127.0.0.1");
  let got = 0;
  peer.on("data", (d: Uint8Array) => got += d.length);
  const socket = await accepted;
  const conn = new Connection(socket, false, { maxSendBuffer });
  return {
    conn,
    got: () => got,
    close() {
      peer.destroy();
      socket.destroy();
      server.close();
    },
  };
}

Deno.test("connection: a burst while corked twice still goes out past the cork limit, no overflow", async () => {
  const p = await socketPair(1 << 20);
  let overflowed = false;
  p.conn.onOverflow = () => overflowed = true;
  try {
    // Two bursts that overlap (two rooms joined at once, say).
    p.conn.cork();
    p.conn.cork();
    for (let i = 0; i < 150; i++) {
      p.conn.write("x".repeat(10_000));
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 5)); // the burst's awaits
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(p.got() > 0, "nothing went out while corked twice");
    assert.equal(overflowed, false);
    p.conn.uncork();
    p.conn.uncork();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(p.got(), 1_500_000);
  } finally {
    p.close();
  }
});

Deno.test("connection: uncork without cork does not undo another's cork", async () => {
  const p = await socketPair(1 << 20);
  try {
    p.conn.cork();
    p.conn.uncork();
    p.conn.uncork(); // one too many (e.g. the connection moved by a resumption meanwhile)
    p.conn.cork();
    p.conn.write("held");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(p.got(), 0);
    p.conn.uncork();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(p.got(), 4);
  } finally {
    p.close();
  }
});

// --- core/fanout.ts -------------------------------------------------------------------

Deno.test("fanout: the spliced opening tag is right for self-closing stanzas and escaped JIDs", () => {
  const sent: string[] = [];
  const session = {
    send: (_s: Stanza, xml: string) => (sent.push(xml), true),
  } as unknown as Session;
  const module = { fullSession: () => session, send: () => {} } as unknown as Module;
  const empty = prepare(element("presence", { from: 'r@c/a"b', to: "ignored" }));
  deliver(module, empty, "x@y/<&'>");
  const full = prepare(message({ from: "r@c/n", type: "groupchat", xmlns: "jabber:client" }, "hi"));
  deliver(module, full, "x@y/z");
  assert.equal(sent[0], '<presence from="r@c/a&quot;b" to="x@y/&lt;&amp;&apos;&gt;"/>');
  assert.deepEqual(parseXml(sent[0]).attrs, { from: 'r@c/a"b', to: "x@y/<&'>" });
  assert.equal(
    sent[1],
    '<message from="r@c/n" type="groupchat" xmlns="jabber:client" to="x@y/z"><body>hi</body></message>',
  );
});

// --- modules/pep/mod.ts ---------------------------------------------------------------

Deno.test("pep: publishing to one's own bare JID works; to another's is forbidden; subscribing to another's node works", async () => {
  await withServer({}, async (t, login) => {
    await t.server.rosters.modify("juliet", "localhost", (r) => {
      r.items.set("romeo@localhost", { subscription: "both", groups: [] });
      return ["romeo@localhost"];
    });
    await t.server.rosters.modify("romeo", "localhost", (r) => {
      r.items.set("juliet@localhost", { subscription: "both", groups: [] });
      return ["juliet@localhost"];
    });
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    const node = "urn:example:diary";
    const own = await iq(
      juliet,
      "set",
      publish(node, "a", "<e xmlns='urn:x'/>"),
      "juliet@localhost",
    );
    assert.equal(own.attrs.type, "result", own.toString());
    const other = await iq(
      romeo,
      "set",
      publish(node, "b", "<e xmlns='urn:x'/>"),
      "juliet@localhost",
    );
    assert.equal(errorOf(other), "forbidden");
    const sub = await iq(
      romeo,
      "set",
      `<pubsub xmlns='${PUBSUB}'><subscribe node='${node}' jid='romeo@localhost/r'/></pubsub>`,
      "juliet@localhost",
    );
    assert.equal(sub.attrs.type, "result", sub.toString());
  });
});

Deno.test("pep: the item size cap holds for every publisher (vCard4 sets too)", async () => {
  await withServer({ pep_max_item_size: 1024 }, async (_t, login) => {
    const juliet = await login("juliet");
    const big = "x".repeat(4000);
    const direct = await iq(
      juliet,
      "set",
      publish("urn:example:big", "a", `<e xmlns='urn:x'>${big}</e>`),
    );
    assert.equal(errorOf(direct), "not-acceptable payload-too-big");
    const v4 = await iq(
      juliet,
      "set",
      `<vcard xmlns='${V4}'><note><text>${big}</text></note></vcard>`,
    );
    assert.equal(v4.attrs.type, "error", "a vCard4 set went past pep_max_item_size");
  });
});

// --- modules/vcard_legacy.ts ----------------------------------------------------------

Deno.test("vcard_legacy: a legacy vCard reads back whole (fields vCard4 cannot say are kept)", async () => {
  await withServer({}, async (_t, login) => {
    const juliet = await login("juliet");
    const vcard = "<vCard xmlns='vcard-temp'><FN>Juliet</FN>" +
      "<TEL><HOME/><VOICE/><NUMBER>+39 045</NUMBER></TEL>" +
      "<EMAIL><WORK/><INTERNET/><USERID>j@example.com</USERID></EMAIL>" +
      "<ORG><ORGNAME>Capulet</ORGNAME><ORGUNIT>House</ORGUNIT></ORG></vCard>";
    assert.equal((await iq(juliet, "set", vcard)).attrs.type, "result");
    for (const to of ["", "juliet@localhost"]) {
      const back = (await iq(juliet, "get", "<vCard xmlns='vcard-temp'/>", to))
        .getChild("vCard", "vcard-temp")!;
      assert.equal(back.getChild("ORG")?.getChildText("ORGUNIT"), "House", back.toString());
      assert.ok(back.getChild("TEL")?.getChild("HOME"), back.toString());
      assert.ok(back.getChild("EMAIL")?.getChild("WORK"), back.toString());
    }
  });
});

Deno.test("vcard_legacy: a vCard4 set after the legacy vCard is what the legacy vCard shows", async () => {
  await withServer({}, async (_t, login) => {
    const juliet = await login("juliet");
    const vcard = "<vCard xmlns='vcard-temp'><FN>Juliet</FN>" +
      "<ORG><ORGNAME>Capulet</ORGNAME><ORGUNIT>House</ORGUNIT></ORG></vCard>";
    assert.equal((await iq(juliet, "set", vcard)).attrs.type, "result");
    const v4 = `<vcard xmlns='${V4}'><fn><text>Jules</text></fn></vcard>`;
    assert.equal((await iq(juliet, "set", v4)).attrs.type, "result");
    const back = (await iq(juliet, "get", "<vCard xmlns='vcard-temp'/>", "juliet@localhost"))
      .getChild("vCard", "vcard-temp")!;
    assert.equal(back.getChildText("FN"), "Jules");
    assert.equal(back.getChild("ORG"), undefined);
  });
});
