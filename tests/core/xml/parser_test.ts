import assert from "node:assert/strict";
import { parseXml, type StreamErrorCondition, StreamParser } from "../../../core/xml/parser.ts";
import type { Stanza } from "../../../core/xml/stanza.ts";

const HEADER = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' " +
  "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en'>";
const enc = new TextEncoder();

function collect(opts = {}) {
  const out = {
    opens: [] as Record<string, string>[],
    stanzas: [] as Stanza[],
    closed: 0,
    errors: [] as [StreamErrorCondition, string][],
  };
  const parser = new StreamParser({
    streamOpen: (a) => out.opens.push(a),
    stanza: (s) => out.stanzas.push(s),
    streamClose: () => out.closed++,
    error: (c, t) => out.errors.push([c, t]),
  }, opts);
  return {
    parser,
    out,
    feed: (s: string | Uint8Array) => parser.feed(typeof s === "string" ? enc.encode(s) : s),
  };
}

Deno.test("stream header attributes, stanzas, close", () => {
  const { feed, out } = collect();
  feed(HEADER + "<message to='a@b'><body>hi</body></message> \n <presence/></stream:stream>");
  assert.deepEqual(out.opens, [{ to: "localhost", version: "1.0", "xml:lang": "en" }]);
  assert.deepEqual(out.stanzas.map(String), [
    '<message to="a@b"><body>hi</body></message>',
    "<presence/>",
  ]);
  assert.equal(out.closed, 1);
  assert.deepEqual(out.errors, []);
});

Deno.test("stanzas split anywhere across chunks, including inside a UTF-8 character", () => {
  const xml = HEADER + "<message><body>caf\u00e9 \u263a &amp; &#x41;</body></message>";
  const bytes = enc.encode(xml);
  for (const size of [1, 2, 3, 7]) {
    const { feed, out } = collect();
    for (let i = 0; i < bytes.length; i += size) feed(bytes.subarray(i, i + size));
    assert.equal(out.stanzas.length, 1, `chunk size ${size}`);
    assert.equal(out.stanzas[0].getChildText("body"), "caf\u00e9 \u263a & A");
  }
});

Deno.test("namespaces: default not stored, others stored on every element", () => {
  const { feed, out } = collect();
  feed(
    HEADER +
      "<iq type='get' id='1'><query xmlns='jabber:iq:roster'><item jid='x@y'/></query></iq>" +
      "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>" +
      "<message><x:y xmlns:x='urn:x'/></message>",
  );
  const [iq, auth, msg] = out.stanzas;
  assert.equal(iq.attrs.xmlns, undefined);
  const query = iq.getChild("query", "jabber:iq:roster")!;
  assert.equal(query.getChild("item")!.attrs.jid, "x@y");
  assert.equal(auth.attrs.xmlns, "urn:ietf:params:xml:ns:xmpp-sasl");
  assert.equal(auth.getText(), "AA==");
  assert.equal(msg.getChild("y", "urn:x")?.name, "y");
});

const errorCases: [string, string, StreamErrorCondition][] = [
  ["malformed", HEADER + "<message><body></message>", "not-well-formed"],
  ["doctype", "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>", "restricted-xml"],
  ["doctype after header", HEADER + "<!DOCTYPE x>", "restricted-xml"],
  ["comment", HEADER + "<!-- hi -->", "restricted-xml"],
  ["processing instruction", HEADER + "<?evil?>", "restricted-xml"],
  ["custom entity", HEADER + "<message>&lol;</message>", "restricted-xml"],
  [
    "wrong stream namespace",
    "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'>",
    "invalid-namespace",
  ],
  [
    "wrong default namespace",
    "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
    "invalid-namespace",
  ],
  ["text between stanzas", HEADER + "hello<presence/>", "not-well-formed"],
];

for (const [name, input, condition] of errorCases) {
  Deno.test(`errors: ${name} → ${condition}`, () => {
    const { feed, out } = collect();
    feed(input);
    assert.equal(out.errors.length, 1, JSON.stringify(out));
    assert.equal(out.errors[0][0], condition);
    feed("<presence/>"); // ignored after the error
    assert.equal(out.errors.length, 1);
  });
}

Deno.test("errors: invalid UTF-8 → unsupported-encoding", () => {
  const { feed, out } = collect();
  feed(HEADER);
  feed(new Uint8Array([0x3c, 0x61, 0xc3, 0x28, 0x3e]));
  assert.deepEqual(out.errors.map((e) => e[0]), ["unsupported-encoding"]);
});

Deno.test("errors: too large and too deep → policy-violation, with bounded input", () => {
  let t = collect({ maxStanzaSize: 1000 });
  t.feed(HEADER + "<message><body>");
  for (let i = 0; i < 5 && t.out.errors.length === 0; i++) t.feed("x".repeat(400));
  assert.deepEqual(t.out.errors.map((e) => e[0]), ["policy-violation"]);
  t = collect({ maxStanzaSize: 1000 });
  t.feed(HEADER + "<message><body>" + "y".repeat(2000) + "</body></message>");
  assert.deepEqual(t.out.errors.map((e) => e[0]), ["policy-violation"]);
  t = collect({ maxDepth: 5 });
  t.feed(HEADER + "<a><b><c><d><e><f>");
  assert.deepEqual(t.out.errors.map((e) => e[0]), ["policy-violation"]);
  // Many small stanzas are fine whatever their total.
  t = collect({ maxStanzaSize: 1000 });
  t.feed(HEADER + "<presence/>".repeat(500));
  assert.equal(t.out.stanzas.length, 500);
  assert.deepEqual(t.out.errors, []);
});

Deno.test("reset() starts a new stream, even from inside a callback", () => {
  const opens: string[] = [];
  const stanzas: string[] = [];
  const parser: StreamParser = new StreamParser({
    streamOpen: (a) => opens.push(a.to),
    stanza: (s) => {
      stanzas.push(s.name);
      if (s.name === "proceed") parser.reset();
    },
    streamClose: () => {},
    error: (c) => assert.fail(c),
  });
  parser.feed(enc.encode(HEADER + "<proceed/>"));
  parser.feed(enc.encode(HEADER.replace("localhost", "second") + "<presence/>"));
  assert.deepEqual(opens, ["localhost", "second"]);
  assert.deepEqual(stanzas, ["proceed", "presence"]);
});

Deno.test("parseXml parses one element and refuses bad input", () => {
  const s = parseXml("<message from='a@b'><body>x &lt; y</body></message>");
  assert.equal(s.getChildText("body"), "x < y");
  assert.throws(() => parseXml("<message>"), /no complete element/);
  assert.throws(() => parseXml("<a>&x;</a>"), /restricted-xml/);
});

Deno.test("a stanza is dispatched only once closed correctly", () => {
  // A wrong end tag: the message is not delivered, the stream fails.
  let t = collect();
  t.feed(HEADER + "<message to='a@b'><body>x</body></iq>");
  assert.deepEqual(t.out.stanzas, []);
  assert.deepEqual(t.out.errors.map((e) => e[0]), ["not-well-formed"]);
  // Cut off by the end of the stream: not delivered, and the close is an error.
  t = collect();
  t.feed(HEADER + "<presence/><message to='a@b'><body>x</body></stream:stream>");
  assert.deepEqual(t.out.stanzas.map(String), ["<presence/>"]);
  assert.equal(t.out.closed, 0);
  assert.deepEqual(t.out.errors.map((e) => e[0]), ["not-well-formed"]);
});

Deno.test("limits outside stanzas: whitespace, header, names, attributes — bounded as bytes arrive", () => {
  // 50 MiB of whitespace between stanzas: refused once past maxGap, never buffered.
  let t = collect({ maxStanzaSize: 10_000 });
  t.feed(HEADER + "<presence/>");
  const mib = enc.encode(" ".repeat(1 << 20));
  let fed = 0;
  for (; fed < 50 && t.out.errors.length === 0; fed++) {
    t.feed(mib);
    assert.equal(t.parser.buffered, 0);
  }
  assert.deepEqual(t.out.errors.map((e) => e[0]), ["policy-violation"]);
  assert.equal(fed, 1);
  // Keepalives between stanzas are fine: the count starts again after each stanza.
  t = collect({ maxStanzaSize: 1000 });
  t.feed(HEADER);
  for (let i = 0; i < 100; i++) t.feed(enc.encode(" ".repeat(500) + "<presence/>"));
  assert.equal(t.out.stanzas.length, 100);
  assert.deepEqual(t.out.errors, []);

  // One unterminated attribute value, fed in 64 KiB pieces: refused past the stanza limit.
  t = collect({ maxStanzaSize: 10_000 });
  t.feed(HEADER + "<message to='");
  const piece = enc.encode("a".repeat(64 * 1024));
  for (let i = 0; i < 800 && t.out.errors.length === 0; i++) {
    t.feed(piece);
    assert.ok(t.parser.buffered <= 10_000 + piece.length);
  }
  assert.deepEqual(t.out.errors.map((e) => e[0]), ["policy-violation"]);

  // A start tag with 100,000 attributes: too many attributes.
  t = collect({ maxStanzaSize: 2 << 20 });
  let attrs = "";
  for (let i = 0; i < 100_000; i++) attrs += ` a${i}='x'`;
  t.feed(HEADER + `<message${attrs}/>`);
  assert.deepEqual(t.out.errors, [["policy-violation", "too many attributes"]]);

  // The stream header, a long name, a long attribute value.
  t = collect();
  t.feed(enc.encode("<stream:stream xmlns='jabber:client' to='" + "x".repeat(9000)));
  assert.deepEqual(t.out.errors.map((e) => e[1]), ["the stream header is too large"]);
  t = collect();
  t.feed(HEADER + `<m${"n".repeat(2000)}/>`);
  assert.deepEqual(t.out.errors.map((e) => e[1]), ["element name too long"]);
  t = collect({ maxAttributeLength: 100 });
  t.feed(HEADER + `<message id='${"i".repeat(101)}'/>`);
  assert.deepEqual(t.out.errors.map((e) => e[1]), ["attribute value too long"]);
});

Deno.test("setOptions raises the stanza limit (after authentication)", () => {
  const t = collect({ maxStanzaSize: 10_000 });
  t.feed(HEADER);
  t.parser.setOptions({ maxStanzaSize: 100_000 });
  t.feed(`<message><body>${"x".repeat(50_000)}</body></message>`);
  assert.equal(t.out.stanzas.length, 1);
  assert.deepEqual(t.out.errors, []);
});

Deno.test("XML rules: characters, references, declaration, CDATA", () => {
  const cases: [string, StreamErrorCondition | undefined][] = [
    [HEADER + "<message>\u0001</message>", "not-well-formed"],
    [HEADER + "<message>&#0;</message>", "not-well-formed"],
    [HEADER + "<message>&#x1F600;</message>", undefined],
    [HEADER + "<message>a & b</message>", "not-well-formed"],
    [HEADER + "<message>]]></message>", "not-well-formed"],
    [HEADER + "<message><![CDATA[<b>&amp;</b>]]></message>", undefined],
    [HEADER + "<![CDATA[x]]>", "not-well-formed"],
    [HEADER + "<message a='1' a='2'/>", "not-well-formed"],
    [HEADER + "<message a=1/>", "not-well-formed"],
    [HEADER + "<message a='1'b='2'/>", "not-well-formed"],
    [HEADER + "<message><p:x/></message>", "bad-namespace-prefix"],
    [HEADER + "<message xmlns:a='urn:x' xmlns:b='urn:x' a:i='1' b:i='2'/>", "not-well-formed"],
    ["<?xml version='1.0' encoding='ISO-8859-1'?>", "unsupported-encoding"],
    ["<?xml-stylesheet href='x'?>", "restricted-xml"],
    [HEADER + "<?xml version='1.0'?>", "restricted-xml"],
  ];
  for (const [input, condition] of cases) {
    const t = collect();
    t.feed(input);
    assert.deepEqual(t.out.errors.map((e) => e[0]), condition ? [condition] : [], input);
  }
  const t = collect();
  t.feed(HEADER + "<message><![CDATA[<b>&amp;</b>]]>&#x1F600;</message>");
  assert.equal(t.out.stanzas[0].getText(), "<b>&amp;</b>\u{1F600}");
});

Deno.test("an open stanza is measured after every token, whatever the reads look like", () => {
  const t = collect({ maxStanzaSize: 10_000 });
  t.feed(HEADER + "<message>");
  const piece = enc.encode("<a/>".repeat(1000)); // every read ends on a '>'
  let fed = 0;
  for (; fed < 500 && t.out.errors.length === 0; fed++) t.feed(piece);
  assert.deepEqual(t.out.errors.map((e) => e[1]), ["stanza too large"]);
  assert.ok(fed <= 3, `read ${fed * piece.length} characters of one stanza`);
});

Deno.test("a stream header that arrives whole is measured too", () => {
  const t = collect();
  t.feed(enc.encode(
    `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' x='${
      "a".repeat(60_000)
    }'>`,
  ));
  assert.deepEqual(t.out.errors.map((e) => e[1]), ["the stream header is too large"]);
  assert.deepEqual(t.out.opens, []);
});

Deno.test("whitespace keepalives never add up; a flood of whitespace does", () => {
  const realNow = performance.now;
  let clock = 0;
  performance.now = () => clock;
  try {
    const t = collect({ maxStanzaSize: 1000 });
    t.feed(HEADER + "<presence/>");
    // One space every 30 s for a long time: 5,000 bytes against a limit of 1,000.
    for (let i = 0; i < 5000; i++) {
      clock += 30_000;
      t.feed(enc.encode(" "));
    }
    assert.deepEqual(t.out.errors, []);
    // 2,000 bytes without a pause: past the limit.
    for (let i = 0; i < 2000 && t.out.errors.length === 0; i++) t.feed(enc.encode(" "));
    assert.deepEqual(t.out.errors.map((e) => e[1]), ["too much whitespace between stanzas"]);
  } finally {
    performance.now = realNow;
  }
});

Deno.test("a jabber:client element inside another namespace keeps its namespace", () => {
  const t = collect();
  t.feed(
    HEADER +
      "<message to='a@b'><forwarded xmlns='urn:xmpp:forward:0'>" +
      "<message xmlns='jabber:client' from='c@d' to='a@b'><body>inner</body></message>" +
      "</forwarded></message>",
  );
  const outer = t.out.stanzas[0];
  assert.equal(
    outer.toString(),
    '<message to="a@b"><forwarded xmlns="urn:xmpp:forward:0">' +
      '<message xmlns="jabber:client" from="c@d" to="a@b"><body>inner</body></message>' +
      "</forwarded></message>",
  );
  const inner = outer.getChild("forwarded", "urn:xmpp:forward:0")!.getChild(
    "message",
    "jabber:client",
  )!;
  assert.equal(inner.getChildText("body"), "inner");
  // And the same after storage's parseXml.
  assert.equal(parseXml(outer.toString()).toString(), outer.toString());
});
