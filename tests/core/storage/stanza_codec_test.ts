import assert from "node:assert/strict";
import { decodeStanza, encodeStanza } from "../../../core/storage/stanza_codec.ts";
import { StorageError } from "../../../core/storage/types.ts";
import { iq, message, Stanza } from "../../../core/xml/stanza.ts";

Deno.test("stanza codec: compact [name, attrs, ...children] JSON", () => {
  const s = message({ to: "romeo@example.com", type: "chat" }, "hi");
  assert.equal(
    encodeStanza(s),
    '["message",{"to":"romeo@example.com","type":"chat"},["body",{},"hi"]]',
  );
});

Deno.test("stanza codec: round-trips names, namespaces, attributes, text order", () => {
  const s = iq({ type: "set", id: "1" })
    .tag("query", { xmlns: "jabber:iq:roster", ver: "" })
    .tag("item", { jid: "a&b@example.com", name: '"<Ω>" ☃ \u{1F600}' })
    .text("before").tag("group").text("Friends").up().text("after")
    .up().up();
  s.addDirectChild(new Stanza("x", { xmlns: "urn:example", "xml:lang": "en" }));
  const back = decodeStanza(encodeStanza(s));
  assert.equal(back.toString(), s.toString());
  assert.deepEqual(back.children.map((c) => typeof c === "string" ? c : c.name), ["query", "x"]);
  const [item] = back.getChild("query", "jabber:iq:roster")!.childTags("item");
  assert.deepEqual(item.children.map((c) => typeof c === "string" ? c : c.name), [
    "before",
    "group",
    "after",
  ]);
  // A decoded stanza is a working builder.
  back.tag("more").up();
  assert.ok(back.getChild("more"));
});

Deno.test("stanza codec: undefined attributes are left out", () => {
  const s = new Stanza("presence", { to: undefined, type: "unavailable" });
  assert.equal(encodeStanza(s), '["presence",{"type":"unavailable"}]');
  assert.deepEqual(decodeStanza(encodeStanza(s)).attrs, { type: "unavailable" });
});

Deno.test("stanza codec: anything else is a StorageError", () => {
  for (
    const bad of [
      "",
      "{",
      "{}",
      "[]",
      "[1,{}]",
      '["a"]',
      '["a",null]',
      '["a",{"b":1}]',
      '["a",{},5]',
    ]
  ) {
    assert.throws(() => decodeStanza(bad), StorageError, bad);
  }
});
