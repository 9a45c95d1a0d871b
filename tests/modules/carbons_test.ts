/** XEP-0280 Message Carbons between two resources. */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";
import { parseXml } from "../../core/xml/parser.ts";
import type { Stanza } from "../../core/xml/stanza.ts";

const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};

Deno.test("carbons: received and sent copies; private and no-copy honoured; disable stops them", async () => {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const clients: RawClient[] = [];
  const online = async (user: string, resource: string) => {
    const c = await RawClient.connect(t.port);
    clients.push(c);
    await c.login(user, "pw", resource);
    c.send("<presence/>");
    await c.waitFor(/<presence /);
    c.clear();
    return c;
  };
  try {
    for (const u of ["romeo", "juliet"]) await t.server.users("localhost")!.createUser(u, "pw");
    const romeo = await online("romeo", "r");
    const a = await online("juliet", "a");
    const b = await online("juliet", "b");
    b.send("<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    await b.waitFor(/<iq [^>]*id="c1"[^>]*type="result"/);
    b.clear();

    romeo.send("<message to='juliet@localhost/a' type='chat'><body>in1</body></message>");
    await a.waitFor(/<body>in1<\/body>/);
    const received =
      (await b.waitFor(/<message [^>]*>.*?<\/message><\/forwarded><\/received><\/message>/s))[0];
    assert.match(
      received,
      /^<message to="juliet@localhost\/b" from="juliet@localhost" type="chat"><received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message [^>]*from="romeo@localhost\/r"/,
    );

    a.send("<message to='romeo@localhost' type='chat'><body>out1</body></message>");
    await romeo.waitFor(/<body>out1<\/body>/);
    await b.waitFor(
      /<sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message [^>]*><body>out1<\/body>/,
    );

    b.clear();
    romeo.send(
      "<message to='juliet@localhost/a' type='chat'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/></message>",
    );
    romeo.send(
      "<message to='juliet@localhost/a' type='chat'><body>nocopy</body><no-copy xmlns='urn:xmpp:hints'/></message>",
    );
    await a.waitFor(/<body>nocopy<\/body>/);
    assert.doesNotMatch(a.received, /<private /); // stripped before delivery
    b.send("<iq type='set' id='c2'><disable xmlns='urn:xmpp:carbons:2'/></iq>");
    await b.waitFor(/id="c2"/);
    romeo.send("<message to='juliet@localhost/a' type='chat'><body>in2</body></message>");
    await a.waitFor(/<body>in2<\/body>/);
    await new Promise((r) => setTimeout(r, 50));
    assert.doesNotMatch(b.received, /secret|nocopy|in2/);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
});

Deno.test("carbons: the forwarded message is in jabber:client; odd resources get well-formed XML", async () => {
  const t = await startTestServer(PLAIN);
  const clients: RawClient[] = [];
  const online = async (user: string, resource: string) => {
    const c = await RawClient.connect(t.port);
    clients.push(c);
    await c.login(user, "pw", resource);
    c.send("<presence/>");
    await c.waitFor(/<presence /);
    c.clear();
    return c;
  };
  /** The carbon in what `c` received, checked to be one well-formed element. */
  const carbon = async (c: RawClient, kind: string) => {
    const raw = (await c.waitFor(
      new RegExp(`<message to=[^>]*><${kind} .*?</${kind}></message>`, "s"),
    ))[0];
    let parsed: Stanza;
    try {
      parsed = parseXml(raw);
    } catch (e) {
      throw new Error(`not well-formed: ${raw}: ${e}`);
    }
    return { raw, parsed };
  };
  try {
    for (const u of ["romeo", "juliet"]) await t.server.users("localhost")!.createUser(u, "pw");
    const romeo = await online("romeo", "r");
    const a = await online("juliet", "a");
    const odd = await online("juliet", 'a"b&lt;c'); // the resource a"b<c
    odd.send("<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    await odd.waitFor(/id="c1"/);
    odd.clear();

    romeo.send("<message to='juliet@localhost/a' type='chat' id='m1'><body>in</body></message>");
    await a.waitFor(/<body>in<\/body>/);
    const received = await carbon(odd, "received");
    // On the wire: the inner message names its namespace (Prosody sends the same).
    assert.match(
      received.raw,
      /^<message to="juliet@localhost\/a&quot;b&lt;c" from="juliet@localhost" type="chat"><received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client" [^>]*><body>in<\/body><stanza-id xmlns="urn:xmpp:sid:0" by="juliet@localhost" id="[^"]+"\/><\/message><\/forwarded><\/received><\/message>$/,
    ); // (the stanza-id: the copy is in juliet's archive, XEP-0313 §3.5)
    assert.equal(received.parsed.attrs.to, 'juliet@localhost/a"b<c');
    const inner = (p: Stanza, kind: string) =>
      p.getChild(kind, "urn:xmpp:carbons:2")!.getChild("forwarded", "urn:xmpp:forward:0")!
        .firstChild()!;
    const inMsg = inner(received.parsed, "received");
    assert.equal(inMsg.name, "message");
    assert.equal(inMsg.attrs.xmlns, "jabber:client"); // kept: its parent is in another namespace
    assert.equal(inMsg.attrs.from, "romeo@localhost/r");
    assert.equal(inMsg.getChildText("body"), "in");

    odd.clear();
    // With a stanza-id made up by the client: the server's own replaces it.
    a.send(
      "<message to='romeo@localhost' type='chat' id='m2'><body>out</body>" +
        "<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@localhost' id='made-up'/>" +
        "<stanza-id xmlns='urn:xmpp:sid:0' by='Juliet@LocalHost' id='made-up'/></message>",
    );
    const toRomeo = parseXml(
      (await romeo.waitFor(/<message [^]*?<body>out<\/body>[^]*?<\/message>/))[0],
    );
    const sent = await carbon(odd, "sent");
    assert.match(sent.raw, /<forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client" /);
    const outMsg = inner(sent.parsed, "sent");
    assert.equal(outMsg.attrs.xmlns, "jabber:client");
    assert.equal(outMsg.attrs.from, "juliet@localhost/a");
    assert.equal(outMsg.getChildText("body"), "out");
    // The sent copy carries the message's id in juliet's archive (as Prosody's does);
    // romeo sees only his own archive's.
    const sids = (m: Stanza) => m.tags().filter((c) => c.name === "stanza-id").map((c) => c.attrs);
    const [ours] = sids(outMsg);
    assert.equal(sids(outMsg).length, 1);
    assert.equal(ours.by, "juliet@localhost");
    assert.notEqual(ours.id, "made-up");
    const archived = await t.server.storage.open("localhost", "archive", "archive")
      .find("juliet", { reverse: true, limit: 1 });
    assert.equal(archived[0].id, ours.id);
    assert.equal(archived[0].stanza.getChild("stanza-id", "urn:xmpp:sid:0"), undefined);
    assert.deepEqual(sids(toRomeo).map((a) => a.by), ["romeo@localhost"]);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
});
