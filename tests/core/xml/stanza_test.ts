import assert from "node:assert/strict";
import { element, iq, message, Stanza } from "../../../core/xml/stanza.ts";
import { parseXml } from "../../../core/xml/parser.ts";

Deno.test("builder: tag/text/up chain and the cursor", () => {
  const s = iq({ type: "set", id: "1" })
    .tag("query", { xmlns: "jabber:iq:roster" })
    .tag("item", { jid: "romeo@example.net", name: "Romeo" })
    .textTag("group", "Friends")
    .up()
    .tag("item", { jid: "nurse@example.net" })
    .up()
    .up()
    .tag("extra")
    .text("t");
  assert.equal(
    s.toString(),
    '<iq type="set" id="1"><query xmlns="jabber:iq:roster"><item jid="romeo@example.net" name="Romeo">' +
      '<group>Friends</group></item><item jid="nurse@example.net"/></query><extra>t</extra></iq>',
  );
  s.reset().tag("after");
  assert.equal(s.children.length, 3);
});

Deno.test("serializer escapes text and attributes, omits an xmlns equal to the parent's", () => {
  const s = message({ to: `a"b'c<d>&e` }, "1 < 2 & 3 > 2 \"q\" 'a'");
  s.tag("x", { xmlns: "urn:x" }).tag("y", { xmlns: "urn:x" }).up().tag("z", { xmlns: "urn:z" });
  assert.equal(
    s.toString(),
    '<message to="a&quot;b&apos;c&lt;d&gt;&amp;e"><body>1 &lt; 2 &amp; 3 &gt; 2 "q" \'a\'</body>' +
      '<x xmlns="urn:x"><y/><z xmlns="urn:z"/></x></message>',
  );
  // And it round-trips through the parser.
  assert.equal(parseXml(s.toString()).toString(), s.toString());
});

Deno.test("getChild defaults to the parent's namespace; childTags filters", () => {
  const s = parseXml(
    "<iq type='result' id='1'><query xmlns='jabber:iq:roster'><item jid='a'/><item jid='b'/>" +
      "<other xmlns='urn:o'/></query></iq>",
  );
  const q = s.getChild("query", "jabber:iq:roster")!;
  assert.equal(s.getChild("query"), undefined); // iq's own namespace is jabber:client
  assert.equal(q.getChild("item")!.attrs.jid, "a"); // defaults to jabber:iq:roster
  assert.deepEqual([...q.childTags("item")].map((i) => i.attrs.jid), ["a", "b"]);
  assert.equal([...q.childTags(undefined, "urn:o")].length, 1);
  assert.equal(q.childWithNs("urn:o")?.name, "other");
  assert.equal(s.firstChild()?.name, "query");
});

Deno.test("reply and errorReply", () => {
  const req = iq({ type: "get", id: "7", from: "a@b/c", to: "b" }).tag("ping", {
    xmlns: "urn:xmpp:ping",
  });
  assert.equal(req.reply().toString(), '<iq id="7" to="a@b/c" from="b" type="result"/>');
  const err = req.errorReply("cancel", "service-unavailable", "no such thing");
  assert.equal(
    err.toString(),
    '<iq id="7" to="a@b/c" from="b" type="error"><error type="cancel">' +
      '<service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>' +
      '<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no such thing</text></error></iq>',
  );
  assert.deepEqual(err.getError(), {
    type: "cancel",
    condition: "service-unavailable",
    text: "no such thing",
  });
  // A message error keeps the original payload; the cursor stays in <error/>.
  const m = message({ from: "a@b/c", to: "d@e", type: "chat" }, "hi");
  const merr = m.errorReply("cancel", "not-acceptable").tag("blocked", {
    xmlns: "urn:xmpp:blocking:errors",
  });
  assert.match(
    merr.toString(),
    /^<message to="a@b\/c" from="d@e" type="error"><body>hi<\/body><error type="cancel"><not-acceptable [^>]*\/><blocked xmlns="urn:xmpp:blocking:errors"\/><\/error><\/message>$/,
  );
});

Deno.test("clone is deep and independent", () => {
  const a = message({ to: "x@y" }, "one");
  const b = a.clone();
  b.attrs.to = "z@y";
  b.getChild("body")!.children[0] = "two";
  assert.equal(a.toString(), '<message to="x@y"><body>one</body></message>');
  assert.equal(b.toString(), '<message to="z@y"><body>two</body></message>');
});

Deno.test("removeChildren, mapTags, element()", () => {
  const s = new Stanza("m", {}, ["t", element("a"), element("b"), element("a")]);
  s.removeChildren("a");
  assert.equal(s.toString(), "<m>t<b/></m>");
  s.mapTags((c) => c.name === "b" ? element("c") : c);
  assert.equal(s.toString(), "<m>t<c/></m>");
});

Deno.test("a child built without an xmlns is in its parent's namespace, as on the wire", () => {
  const PUBSUB = "http://jabber.org/protocol/pubsub";
  const built = new Stanza("iq", { type: "set", id: "1" })
    .tag("pubsub", { xmlns: PUBSUB }).tag("publish", { node: "n" }).tag("item").reset();
  const pubsub = built.getChild("pubsub", PUBSUB)!;
  // The same lookups as on the parsed form of the same XML.
  const parsed = parseXml(built.toString()).getChild("pubsub", PUBSUB)!;
  for (const el of [pubsub, parsed]) {
    assert.equal(el.getChild("publish")?.attrs.node, "n");
    assert.equal(el.getChild("publish", PUBSUB)?.attrs.node, "n");
    assert.equal(el.getChild("publish", "jabber:client"), undefined);
    assert.equal(el.childWithNs(PUBSUB)?.name, "publish");
  }
  pubsub.removeChildren("publish", PUBSUB);
  assert.equal(pubsub.getChild("publish"), undefined);
});
