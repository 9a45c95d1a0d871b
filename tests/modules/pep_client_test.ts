/**
 * PEP with npm:@xmpp/client sessions: an avatar published with XEP-0084's
 * two nodes and publish-options, read by a contact; a precondition the node
 * does not meet is refused with XEP-0060's error, the item left as it was.
 */
import assert from "node:assert/strict";
import { connectXmpp, type TestXmpp, xml } from "../helpers/xmppclient.ts";
import { startTestServer } from "../helpers/server.ts";

const PUBSUB = "http://jabber.org/protocol/pubsub";

const options = (access: string) =>
  xml(
    "publish-options",
    {},
    xml(
      "x",
      { xmlns: "jabber:x:data", type: "submit" },
      xml(
        "field",
        { var: "FORM_TYPE", type: "hidden" },
        xml("value", {}, `${PUBSUB}#publish-options`),
      ),
      xml("field", { var: "pubsub#access_model" }, xml("value", {}, access)),
    ),
  );

const publish = (node: string, id: string, payload: unknown, access: string) =>
  xml(
    "iq",
    { type: "set" },
    xml(
      "pubsub",
      { xmlns: PUBSUB },
      xml("publish", { node }, xml("item", { id }, payload)),
      options(access),
    ),
  );

Deno.test("@xmpp/client: an avatar in PEP with publish-options, read by a contact; a wrong precondition refused", async () => {
  const t = await startTestServer();
  const clients: TestXmpp[] = [];
  try {
    for (const [u, c] of [["juliet", "romeo"], ["romeo", "juliet"]]) {
      await t.server.users("localhost")!.createUser(u, "pw");
      await t.server.rosters.modify(u, "localhost", (r) => {
        r.items.set(`${c}@localhost`, { subscription: "both", groups: [] });
        return [`${c}@localhost`];
      });
    }
    const juliet = await connectXmpp(t.port, "juliet", "pw", "phone");
    const romeo = await connectXmpp(t.port, "romeo", "pw", "desk");
    clients.push(juliet, romeo);
    const id = "a9993e364706816aba3e25717850c26c9cd0d89d";
    await juliet.xmpp.iqCaller.request(
      publish(
        "urn:xmpp:avatar:data",
        id,
        xml("data", { xmlns: "urn:xmpp:avatar:data" }, "AAEC"),
        "presence",
      ),
    );
    await juliet.xmpp.iqCaller.request(
      publish(
        "urn:xmpp:avatar:metadata",
        id,
        xml(
          "metadata",
          { xmlns: "urn:xmpp:avatar:metadata" },
          xml("info", { bytes: "3", id, type: "image/png" }),
        ),
        "presence",
      ),
    );
    const got = await romeo.xmpp.iqCaller.request(
      xml(
        "iq",
        { type: "get", to: "juliet@localhost" },
        xml("pubsub", { xmlns: PUBSUB }, xml("items", { node: "urn:xmpp:avatar:data" })),
      ),
    );
    const item = got.getChild("pubsub").getChild("items").getChild("item");
    assert.equal(item.attrs.id, id);
    assert.equal(item.getChild("data", "urn:xmpp:avatar:data").text(), "AAEC");
    // The node is presence-only: asking for open fails with conflict + precondition-not-met.
    const refused = await juliet.xmpp.iqCaller.request(
      publish(
        "urn:xmpp:avatar:data",
        "other",
        xml("data", { xmlns: "urn:xmpp:avatar:data" }, "AQ=="),
        "open",
      ),
    ).then(
      () => undefined,
      (e: { element?: { toString(): string } }) => e.element?.toString() ?? String(e),
    );
    assert.match(String(refused), /<conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.match(
      String(refused),
      /<precondition-not-met xmlns="http:\/\/jabber.org\/protocol\/pubsub#errors"\/>/,
    );
    const still = await romeo.xmpp.iqCaller.request(
      xml(
        "iq",
        { type: "get", to: "juliet@localhost" },
        xml("pubsub", { xmlns: PUBSUB }, xml("items", { node: "urn:xmpp:avatar:data" })),
      ),
    );
    assert.equal(still.getChild("pubsub").getChild("items").getChild("item").attrs.id, id);
  } finally {
    for (const c of clients) await c.stop().catch(() => {});
    await t.stop();
  }
});
