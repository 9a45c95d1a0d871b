/** XEP-0115 §5.1 verification strings: the XEP's worked examples and the §5.4 refusals. */
import assert from "node:assert/strict";
import { CapsError, capsVer, compareOctets } from "../../../core/xml/caps.ts";
import { parseXml } from "../../../core/xml/parser.ts";
import type { Stanza } from "../../../core/xml/stanza.ts";

const query = (inner: string): Stanza =>
  parseXml(`<query xmlns='http://jabber.org/protocol/disco#info'>${inner}</query>`);

const SIMPLE_FEATURES = "<feature var='http://jabber.org/protocol/caps'/>" +
  "<feature var='http://jabber.org/protocol/disco#info'/>" +
  "<feature var='http://jabber.org/protocol/disco#items'/>" +
  "<feature var='http://jabber.org/protocol/muc'/>";
const SIMPLE = "<identity category='client' name='Exodus 0.9.1' type='pc'/>" + SIMPLE_FEATURES;

const SOFTWARE_FORM = "<x xmlns='jabber:x:data' type='result'>" +
  "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>" +
  "<field var='ip_version'><value>ipv4</value><value>ipv6</value></field>" +
  "<field var='os'><value>Mac</value></field>" +
  "<field var='os_version'><value>10.5.1</value></field>" +
  "<field var='software'><value>Psi</value></field>" +
  "<field var='software_version'><value>0.11</value></field>" +
  "</x>";
const COMPLEX = "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>" +
  "<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>" +
  "<feature var='http://jabber.org/protocol/caps'/>" +
  "<feature var='http://jabber.org/protocol/disco#info'/>" +
  "<feature var='http://jabber.org/protocol/disco#items'/>" +
  "<feature var='http://jabber.org/protocol/muc'/>" +
  SOFTWARE_FORM;

async function sha(s: string, alg: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest(alg, new TextEncoder().encode(s)));
  return btoa(String.fromCharCode(...d));
}

Deno.test("capsVer: the XEP's simple example (§5.2)", async () => {
  assert.equal(await capsVer(query(SIMPLE)), "QgayPKawpkPSDYmwT/WM94uAlu0=");
  assert.equal(await capsVer(query(SIMPLE), "SHA-1"), "QgayPKawpkPSDYmwT/WM94uAlu0=");
});

Deno.test("capsVer: the XEP's complex example, with a form (§5.3)", async () => {
  assert.equal(await capsVer(query(COMPLEX)), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
});

Deno.test("capsVer: the order of identities, features, forms, fields and values does not matter", async () => {
  const shuffled = "<feature var='http://jabber.org/protocol/muc'/>" + SOFTWARE_FORM
    .replace(
      "<field var='ip_version'><value>ipv4</value><value>ipv6</value></field>",
      "",
    ).replace(
      "<field var='os'>",
      "<field var='ip_version'><value>ipv6</value><value>ipv4</value></field><field var='os'>",
    ) +
    "<feature var='http://jabber.org/protocol/disco#items'/>" +
    "<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>" +
    "<feature var='http://jabber.org/protocol/caps'/>" +
    "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>" +
    "<feature var='http://jabber.org/protocol/disco#info'/>";
  assert.equal(await capsVer(query(shuffled)), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
});

Deno.test("capsVer: sha-256 hashes the same string", async () => {
  const s = "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<" +
    "http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<" +
    "http://jabber.org/protocol/muc<";
  assert.equal(await sha(s, "SHA-1"), "QgayPKawpkPSDYmwT/WM94uAlu0="); // the string itself
  assert.equal(await capsVer(query(SIMPLE), "sha-256"), await sha(s, "SHA-256"));
});

Deno.test("capsVer: forms are sorted by FORM_TYPE; a form without a hidden FORM_TYPE is left out", async () => {
  const form = (type: string, v: string, hidden = true) =>
    `<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'${
      hidden ? " type='hidden'" : ""
    }><value>${type}</value></field><field var='f'><value>${v}</value></field></x>`;
  assert.equal(
    await capsVer(query(form("urn:b", "2") + form("urn:a", "1"))),
    await sha("urn:a<f<1<urn:b<f<2<", "SHA-1"),
  );
  assert.equal(
    await capsVer(query(SIMPLE + form("urn:c", "3", false))),
    "QgayPKawpkPSDYmwT/WM94uAlu0=",
  );
  const noType =
    "<x xmlns='jabber:x:data' type='result'><field var='f'><value>1</value></field></x>";
  assert.equal(await capsVer(query(SIMPLE + noType)), "QgayPKawpkPSDYmwT/WM94uAlu0=");
});

Deno.test("capsVer: sorts by UTF-8 bytes (i;octet), not UTF-16 code units", async () => {
  // U+FF61 is FF61 in UTF-16 but EF BD A1 in UTF-8; U+1F600 is D83D… but F0 9F 98 80.
  assert.ok(compareOctets("\u{FF61}", "\u{1F600}") < 0);
  assert.ok("\u{FF61}" > "\u{1F600}"); // JavaScript's own order is the other way round
  assert.equal(
    await capsVer(query("<feature var='\u{1F600}'/><feature var='\u{FF61}'/>")),
    await sha("\u{FF61}<\u{1F600}<", "SHA-1"),
  );
});

const illFormed: Array<[string, string]> = [
  [
    "the same identity twice",
    SIMPLE + "<identity category='client' name='Exodus 0.9.1' type='pc'/>",
  ],
  ["the same feature twice", SIMPLE + "<feature var='http://jabber.org/protocol/muc'/>"],
  ["two forms with one FORM_TYPE", COMPLEX + SOFTWARE_FORM],
  [
    "a FORM_TYPE with two different values",
    SIMPLE +
    "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>" +
    "<value>urn:a</value><value>urn:b</value></field></x>",
  ],
  [
    "two FORM_TYPE fields",
    SIMPLE +
    "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>" +
    "<value>urn:a</value></field><field var='FORM_TYPE' type='hidden'><value>urn:a</value>" +
    "</field></x>",
  ],
  [
    "a field without var",
    SIMPLE +
    "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>" +
    "<value>urn:a</value></field><field><value>1</value></field></x>",
  ],
  [
    "the same field twice",
    SIMPLE +
    "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>" +
    "<value>urn:a</value></field><field var='f'><value>1</value></field>" +
    "<field var='f'><value>2</value></field></x>",
  ],
  // The preimage attack: one feature "a<b" hashes like the two features "a" and "b".
  ["a feature with <", "<feature var='a&lt;b'/>"],
  ["an identity name with <", "<identity category='client' type='pc' name='x&lt;y'/>"],
  ["a field value with <", SOFTWARE_FORM.replace("Mac", "Mac&lt;os_version")],
  ["an identity without type", "<identity category='client' name='x'/>"],
  ["an identity type with /", "<identity category='client' type='pc/x' name='x'/>"],
  ["a language with /", "<identity category='client' type='pc' xml:lang='en/x' name='x'/>"],
  ["a feature without var", "<feature/>"],
];

for (const [what, inner] of illFormed) {
  Deno.test(`capsVer: rejects ${what}`, async () => {
    await assert.rejects(capsVer(query(inner)), CapsError);
  });
}

Deno.test("capsVer: rejects an unknown hash and anything but a disco#info query", async () => {
  await assert.rejects(capsVer(query(SIMPLE), "md5"), CapsError);
  await assert.rejects(capsVer(parseXml("<query xmlns='jabber:iq:version'/>")), CapsError);
});

Deno.test("capsVer: an element built without xmlns on its children is read as on the wire", async () => {
  const q = query("");
  q.tag("identity", { category: "client", type: "pc", name: "Exodus 0.9.1" }).up();
  for (const f of ["caps", "disco#info", "disco#items", "muc"]) {
    q.tag("feature", { var: `http://jabber.org/protocol/${f}` }).up();
  }
  assert.equal(await capsVer(q), "QgayPKawpkPSDYmwT/WM94uAlu0=");
});
