import assert from "node:assert/strict";
import { parseXml } from "../../../core/xml/parser.ts";
import { fromVcard4, toVcard4 } from "../../../core/xml/vcard.ts";

Deno.test("vcard: vcard-temp to vCard4 and back keeps the fields both know", () => {
  const legacy = parseXml(
    "<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN><N><FAMILY>Capulet</FAMILY><GIVEN>Juliet</GIVEN></N>" +
      "<NICKNAME>Jules</NICKNAME><BDAY>1597-07-31</BDAY><URL>https://verona.it</URL>" +
      "<EMAIL><INTERNET/><USERID>juliet@verona.it</USERID></EMAIL><TEL><VOICE/><NUMBER>+39 045</NUMBER></TEL>" +
      "<ADR><STREET>Via Cappello 23</STREET><LOCALITY>Verona</LOCALITY><CTRY>IT</CTRY></ADR>" +
      "<ORG><ORGNAME>House Capulet</ORGNAME></ORG><JABBERID>juliet@localhost</JABBERID>" +
      "<DESC>Hi</DESC><PHOTO><BINVAL>AAAA</BINVAL></PHOTO><X-UNKNOWN>x</X-UNKNOWN></vCard>",
  );
  const v4 = toVcard4(legacy);
  assert.equal(v4.attrs.xmlns, "urn:ietf:params:xml:ns:vcard-4.0");
  assert.equal(v4.getChild("bday")?.getChildText("date"), "1597-07-31");
  assert.equal(v4.getChild("impp")?.getChildText("uri"), "xmpp:juliet@localhost");
  assert.equal(v4.getChild("adr")?.getChildText("locality"), "Verona");
  assert.equal(v4.getChild("photo"), undefined); // avatars are PEP's
  const back = fromVcard4(parseXml(v4.toString()));
  for (const field of ["FN", "NICKNAME", "BDAY", "URL", "JABBERID", "DESC"]) {
    assert.equal(back.getChildText(field), legacy.getChildText(field), field);
  }
  assert.equal(back.getChild("N")?.getChildText("FAMILY"), "Capulet");
  assert.equal(back.getChild("EMAIL")?.getChildText("USERID"), "juliet@verona.it");
  assert.equal(back.getChild("TEL")?.getChildText("NUMBER"), "+39 045");
  assert.equal(back.getChild("ADR")?.getChildText("STREET"), "Via Cappello 23");
  assert.equal(back.getChild("ORG")?.getChildText("ORGNAME"), "House Capulet");
  assert.equal(back.getChild("X-UNKNOWN"), undefined);
});
