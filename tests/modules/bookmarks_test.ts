/**
 * Bookmarks (XEP-0402) with XEP-0048 compatibility: what a legacy client
 * saves in private XML storage is in PEP, one item per room, and what a
 * modern client publishes is what a legacy client reads.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";
import { parseXml } from "../../core/xml/parser.ts";
import type { Stanza } from "../../core/xml/stanza.ts";

const PUBSUB = "http://jabber.org/protocol/pubsub";
const NODE = "urn:xmpp:bookmarks:1";

let seq = 0;
async function iq(c: RawClient, type: string, inner: string, to = ""): Promise<Stanza> {
  const id = `b${++seq}`;
  c.send(`<iq type='${type}' id='${id}'${to ? ` to='${to}'` : ""}>${inner}</iq>`);
  const m = await c.waitFor(new RegExp(`<iq [^>]*id="${id}"[^>]*?(/>|>[^]*?</iq>)`));
  return parseXml(m[0]);
}

const legacySet = (inner: string) =>
  `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>${inner}</storage></query>`;
const legacyGet = "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>";
const pepItems = `<pubsub xmlns='${PUBSUB}'><items node='${NODE}'/></pubsub>`;

async function withJuliet(fn: (c: RawClient, again: () => Promise<RawClient>) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cadence-bookmarks-" });
  const options = {
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  };
  let t = await startTestServer(options, dir);
  const clients: RawClient[] = [];
  const login = async () => {
    const c = await RawClient.connect(t.port);
    clients.push(c);
    await c.login("juliet", "pw", `r${clients.length}`);
    return c;
  };
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await fn(await login(), async () => {
      for (const c of clients) c.close();
      await t.stop({ keepData: true });
      t = await startTestServer(options, dir);
      return await login();
    });
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
}

Deno.test("bookmarks: a legacy save becomes PEP items; removing a room retracts it; urls stay", async () => {
  await withJuliet(async (c) => {
    const info = await iq(
      c,
      "get",
      "<query xmlns='http://jabber.org/protocol/disco#info'/>",
      "juliet@localhost",
    );
    assert.match(info.toString(), /var="urn:xmpp:bookmarks:1#compat"/);
    const saved = await iq(
      c,
      "set",
      legacySet(
        "<conference jid='Garden@Conference.localhost' name='The Garden' autojoin='true'>" +
          "<nick>Jules</nick><password>rose</password></conference>" +
          "<conference jid='kitchen@conference.localhost'/>" +
          "<conference jid='not a jid/x'/>" +
          "<url name='Home' url='https://example.com/'/>",
      ),
    );
    assert.equal(saved.attrs.type, "result");
    const items = (await iq(c, "get", pepItems)).getChild("pubsub", PUBSUB)!.getChild(
      "items",
      PUBSUB,
    )!;
    assert.deepEqual(items.tags().map((i) => i.attrs.id), [
      "garden@conference.localhost",
      "kitchen@conference.localhost",
    ]);
    assert.equal(
      items.tags()[0].tags()[0].toString(),
      '<conference xmlns="urn:xmpp:bookmarks:1" name="The Garden" autojoin="true"><nick>Jules</nick><password>rose</password></conference>',
    );
    // The node is private to its owner, as XEP-0402 says.
    const form = await iq(
      c,
      "get",
      `<pubsub xmlns='${PUBSUB}#owner'><configure node='${NODE}'/></pubsub>`,
    );
    assert.match(form.toString(), /var="pubsub#access_model" type="list-single"><value>whitelist</);
    // A legacy read: the rooms, and the url.
    const read = (await iq(c, "get", legacyGet)).toString();
    assert.match(
      read,
      /<conference jid="garden@conference.localhost" name="The Garden" autojoin="true"><nick>Jules<\/nick><password>rose<\/password><\/conference>/,
    );
    assert.match(read, /<conference jid="kitchen@conference.localhost" autojoin="false"\/>/);
    assert.match(read, /<url name="Home" url="https:\/\/example.com\/"\/>/);
    // Saving without the kitchen retracts it.
    await iq(
      c,
      "set",
      legacySet(
        "<conference jid='garden@conference.localhost' name='The Garden' autojoin='true'><nick>Jules</nick><password>rose</password></conference>",
      ),
    );
    const after = (await iq(c, "get", pepItems)).getChild("pubsub", PUBSUB)!.getChild(
      "items",
      PUBSUB,
    )!;
    assert.deepEqual(after.tags().map((i) => i.attrs.id), ["garden@conference.localhost"]);
  });
});

Deno.test("bookmarks: what a modern client publishes, a legacy client reads, after a restart too", async () => {
  await withJuliet(async (c, again) => {
    const publish = `<pubsub xmlns='${PUBSUB}'><publish node='${NODE}'>` +
      `<item id='attic@conference.localhost'><conference xmlns='${NODE}' name='Attic' autojoin='1'>` +
      "<nick>J</nick></conference></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'>" +
      `<field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#publish-options</value></field>` +
      "<field var='pubsub#persist_items'><value>true</value></field>" +
      "<field var='pubsub#max_items'><value>max</value></field>" +
      "<field var='pubsub#send_last_published_item'><value>never</value></field>" +
      "<field var='pubsub#access_model'><value>whitelist</value></field>" +
      "</x></publish-options></pubsub>";
    assert.equal((await iq(c, "set", publish)).attrs.type, "result");
    const c2 = await again();
    const read = (await iq(c2, "get", legacyGet)).toString();
    assert.match(
      read,
      /<conference jid="attic@conference.localhost" name="Attic" autojoin="true"><nick>J<\/nick><\/conference>/,
    );
  });
});

Deno.test("bookmarks: a legacy round trip keeps extensions; deleted rooms stay deleted; saves do not mix", async () => {
  await withJuliet(async (c) => {
    const publish = (id: string, inner: string) =>
      `<pubsub xmlns='${PUBSUB}'><publish node='${NODE}'><item id='${id}'>${inner}</item></publish></pubsub>`;
    await iq(
      c,
      "set",
      publish(
        "c@conference.localhost",
        `<conference xmlns='${NODE}' name='C' autojoin='true'><nick>J</nick>` +
          "<extensions><state xmlns='urn:example'/></extensions></conference>",
      ),
    );
    // A legacy client reads and saves back unchanged: the extensions stay, nothing is republished.
    const read = (await iq(c, "get", legacyGet)).getChild("query", "jabber:iq:private")!
      .getChild("storage", "storage:bookmarks")!;
    c.clear();
    await iq(c, "set", `<query xmlns='jabber:iq:private'>${read.toString()}</query>`);
    const item = (await iq(c, "get", pepItems)).toString();
    assert.match(item, /<extensions><state xmlns="urn:example"\/><\/extensions>/);
    // A legacy save of a new room, then every room deleted from PEP: a legacy read brings none back.
    await iq(
      c,
      "set",
      legacySet(
        "<conference jid='d@conference.localhost'/><url name='u' url='https://x.example/'/>",
      ),
    );
    for (const id of ["c@conference.localhost", "d@conference.localhost"]) {
      await iq(
        c,
        "set",
        `<pubsub xmlns='${PUBSUB}'><retract node='${NODE}'><item id='${id}'/></retract></pubsub>`,
      );
    }
    const after = (await iq(c, "get", legacyGet)).toString();
    assert.doesNotMatch(after, /<conference /);
    assert.match(after, /<url name="u"/);
    // Two legacy saves at once: the later one wins, whole.
    const one = iq(c, "set", legacySet("<conference jid='one@conference.localhost'/>"));
    const two = iq(c, "set", legacySet("<conference jid='two@conference.localhost'/>"));
    await Promise.all([one, two]);
    const ids = (await iq(c, "get", pepItems)).getChild("pubsub", PUBSUB)!.getChild(
      "items",
      PUBSUB,
    )!
      .tags().map((i) => i.attrs.id);
    assert.deepEqual(ids, ["two@conference.localhost"]);
  });
});
