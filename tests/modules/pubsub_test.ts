/**
 * The pubsub component (XEP-0060): nodes created, configured, published to,
 * subscribed to with notifications, managed by their owner (affiliations,
 * subscriptions, purge, delete), whitelist access, and everything kept across
 * a restart.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { parseXml } from "../../core/xml/parser.ts";
import type { Stanza } from "../../core/xml/stanza.ts";

const PUBSUB = "http://jabber.org/protocol/pubsub";
const OWNER = `${PUBSUB}#owner`;
const SERVICE = "pubsub.localhost";
const OPTIONS = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  components: { [SERVICE]: { module: "pubsub" } },
  admins: ["juliet@localhost"], // who may create nodes
};

let seq = 0;
async function iq(c: RawClient, type: string, inner: string): Promise<Stanza> {
  const id = `s${++seq}`;
  c.send(`<iq type='${type}' id='${id}' to='${SERVICE}'>${inner}</iq>`);
  const m = await c.waitFor(new RegExp(`<iq [^>]*id="${id}"[^>]*?(/>|>[^]*?</iq>)`));
  return parseXml(m[0]);
}
const errorOf = (r: Stanza) =>
  r.getChild("error")?.tags().filter((c) => c.name !== "text").map((c) => c.name).join(" ");
const ps = (inner: string) => `<pubsub xmlns='${PUBSUB}'>${inner}</pubsub>`;
const owner = (inner: string) => `<pubsub xmlns='${OWNER}'>${inner}</pubsub>`;
const publish = (node: string, id: string, text: string) =>
  ps(
    `<publish node='${node}'><item id='${id}'><entry xmlns='urn:example'>${text}</entry></item></publish>`,
  );
const configure = (node: string, fields: string) =>
  owner(
    `<configure node='${node}'><x xmlns='jabber:x:data' type='submit'>` +
      `<field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#node_config</value></field>${fields}</x></configure>`,
  );
const itemIds = (r: Stanza) =>
  r.getChild("pubsub", PUBSUB)?.getChild("items", PUBSUB)?.tags().map((i) => i.attrs.id) ?? [];

async function withService(
  fn: (t: TestServer, login: (u: string) => Promise<RawClient>) => Promise<void>,
  dir?: string,
) {
  const t = await startTestServer(OPTIONS, dir);
  const clients: RawClient[] = [];
  try {
    for (const u of ["juliet", "romeo", "nurse"]) {
      await t.server.users("localhost")!.createUser(u, "pw").catch(() => {});
    }
    await fn(t, async (u) => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(u, "pw", "r");
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await t.stop({ keepData: dir !== undefined });
  }
}

Deno.test("pubsub: create, publish, subscribe and be notified; publishers and outcasts; purge and delete", async () => {
  await withService(async (_t, login) => {
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    const nurse = await login("nurse");
    const info = (await iq(juliet, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"))
      .toString();
    assert.match(info, /<identity category="pubsub" type="service"/);
    assert.equal((await iq(juliet, "set", ps("<create node='news'/>"))).attrs.type, "result");
    assert.equal(errorOf(await iq(juliet, "set", ps("<create node='news'/>"))), "conflict");
    assert.equal(errorOf(await iq(romeo, "set", ps("<create node='other'/>"))), "forbidden");
    // Romeo subscribes (a JID not his own is refused) and gets what juliet publishes.
    assert.equal(
      errorOf(await iq(romeo, "set", ps("<subscribe node='news' jid='juliet@localhost'/>"))),
      "bad-request invalid-jid",
    );
    const sub = await iq(romeo, "set", ps("<subscribe node='news' jid='romeo@localhost/r'/>"));
    assert.match(
      sub.toString(),
      /<subscription node="news" jid="romeo@localhost\/r" subscription="subscribed"\/>/,
    );
    assert.equal((await iq(juliet, "set", publish("news", "n1", "first"))).attrs.type, "result");
    await romeo.waitFor(
      /<message from="pubsub.localhost" to="romeo@localhost\/r" type="headline"><event xmlns="http:\/\/jabber.org\/protocol\/pubsub#event"><items node="news"><item id="n1"><entry xmlns="urn:example">first<\/entry><\/item><\/items><\/event><\/message>/,
    );
    // Only owners and publishers publish.
    assert.equal(errorOf(await iq(romeo, "set", publish("news", "x", "no"))), "forbidden");
    await iq(
      juliet,
      "set",
      owner(
        "<affiliations node='news'><affiliation jid='romeo@localhost' affiliation='publisher'/></affiliations>",
      ),
    );
    assert.equal((await iq(romeo, "set", publish("news", "n2", "second"))).attrs.type, "result");
    // A wrongly typed configuration changes nothing.
    assert.equal(
      errorOf(
        await iq(
          juliet,
          "set",
          configure("news", "<field var='pubsub#max_items'><value>lots</value></field>"),
        ),
      ),
      "not-acceptable",
    );
    await iq(
      juliet,
      "set",
      configure("news", "<field var='pubsub#max_items'><value>10</value></field>"),
    );
    await iq(juliet, "set", publish("news", "n3", "third"));
    // (max_items was 1 when n2 came: n1 went then)
    assert.deepEqual(itemIds(await iq(nurse, "get", ps("<items node='news'/>"))), ["n2", "n3"]);
    assert.deepEqual(itemIds(await iq(nurse, "get", ps("<items node='news' max_items='1'/>"))), [
      "n3",
    ]);
    // Whitelist: the nurse (no affiliation) may neither read nor subscribe; an outcast is forbidden.
    await iq(
      juliet,
      "set",
      configure("news", "<field var='pubsub#access_model'><value>whitelist</value></field>"),
    );
    assert.equal(
      errorOf(await iq(nurse, "get", ps("<items node='news'/>"))),
      "not-allowed closed-node",
    );
    assert.equal(
      errorOf(await iq(nurse, "set", ps("<subscribe node='news' jid='nurse@localhost'/>"))),
      "not-allowed closed-node",
    );
    await iq(
      juliet,
      "set",
      owner(
        "<affiliations node='news'><affiliation jid='romeo@localhost' affiliation='outcast'/></affiliations>",
      ),
    );
    assert.equal(errorOf(await iq(romeo, "get", ps("<items node='news'/>"))), "forbidden");
    const subs = (await iq(juliet, "get", owner("<subscriptions node='news'/>"))).toString();
    assert.doesNotMatch(subs, /romeo/); // an outcast loses his subscription
    // Only the owner may manage; purge, delete.
    assert.equal(errorOf(await iq(nurse, "set", owner("<purge node='news'/>"))), "forbidden");
    assert.equal((await iq(juliet, "set", owner("<purge node='news'/>"))).attrs.type, "result");
    assert.deepEqual(itemIds(await iq(juliet, "get", ps("<items node='news'/>"))), []);
    assert.equal((await iq(juliet, "set", owner("<delete node='news'/>"))).attrs.type, "result");
    assert.equal(errorOf(await iq(juliet, "get", ps("<items node='news'/>"))), "item-not-found");
  });
});

Deno.test("pubsub: nodes, items, affiliations and subscriptions survive a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-pubsub-" });
  try {
    await withService(async (_t, login) => {
      const juliet = await login("juliet");
      const romeo = await login("romeo");
      await iq(juliet, "set", ps("<create node='blog'/>"));
      await iq(
        juliet,
        "set",
        configure("blog", "<field var='pubsub#max_items'><value>5</value></field>"),
      );
      await iq(romeo, "set", ps("<subscribe node='blog' jid='romeo@localhost'/>"));
      await iq(juliet, "set", publish("blog", "p1", "hello"));
      await iq(juliet, "set", publish("blog", "p2", "again"));
    }, dir);
    await withService(async (_t, login) => {
      const juliet = await login("juliet");
      const romeo = await login("romeo");
      assert.deepEqual(itemIds(await iq(romeo, "get", ps("<items node='blog'/>"))), ["p1", "p2"]);
      const subs = (await iq(romeo, "get", ps("<subscriptions/>"))).toString();
      assert.match(
        subs,
        /<subscription node="blog" jid="romeo@localhost" subscription="subscribed"\/>/,
      );
      const affs = (await iq(juliet, "get", ps("<affiliations/>"))).toString();
      assert.match(affs, /<affiliation node="blog" affiliation="owner"\/>/);
      // Still subscribed: romeo (bare JID, available) is notified.
      romeo.send("<presence/>");
      await romeo.waitFor(/<presence /);
      await iq(juliet, "set", publish("blog", "p3", "after"));
      await romeo.waitFor(/<item id="p3">/);
    }, dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("pubsub: who loses access loses the subscription; no other's JIDs; subscriptions capped", async () => {
  await withService(async (_t, login) => {
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    const nurse = await login("nurse");
    await iq(juliet, "set", ps("<create node='wl'/>"));
    await iq(
      juliet,
      "set",
      owner(
        "<affiliations node='wl'><affiliation jid='romeo@localhost' affiliation='member'/></affiliations>",
      ),
    );
    await iq(romeo, "set", ps("<subscribe node='wl' jid='romeo@localhost/r'/>"));
    await iq(nurse, "set", ps("<subscribe node='wl' jid='nurse@localhost/r'/>"));
    // Open → whitelist: the nurse (no affiliation) is dropped, romeo (member) stays.
    await iq(
      juliet,
      "set",
      configure("wl", "<field var='pubsub#access_model'><value>whitelist</value></field>"),
    );
    await iq(juliet, "set", publish("wl", "w1", "one"));
    await romeo.waitFor(/<item id="w1">/);
    // Romeo's membership removed: he gets nothing more.
    await iq(
      juliet,
      "set",
      owner(
        "<affiliations node='wl'><affiliation jid='romeo@localhost' affiliation='none'/></affiliations>",
      ),
    );
    await iq(juliet, "set", publish("wl", "w2", "two"));
    await new Promise((r) => setTimeout(r, 200));
    assert.doesNotMatch(romeo.received, /id="w2"/);
    assert.doesNotMatch(nurse.received, /pubsub#event/);
    const subs = (await iq(juliet, "get", owner("<subscriptions node='wl'/>"))).toString();
    assert.doesNotMatch(subs, /romeo|nurse/);
    // An owner cannot subscribe someone the node would refuse.
    assert.equal(
      errorOf(
        await iq(
          juliet,
          "set",
          owner(
            "<subscriptions node='wl'><subscription jid='nurse@localhost' subscription='subscribed'/></subscriptions>",
          ),
        ),
      ),
      "not-acceptable",
    );
    // Unsubscribing another's JID: forbidden. The node's disco info names it on the query.
    await iq(juliet, "set", ps("<create node='open'/>"));
    assert.equal(
      errorOf(await iq(nurse, "set", ps("<unsubscribe node='open' jid='romeo@localhost'/>"))),
      "forbidden",
    );
    const info = await iq(
      nurse,
      "get",
      "<query xmlns='http://jabber.org/protocol/disco#info' node='open'/>",
    );
    assert.equal(
      info.getChild("query", "http://jabber.org/protocol/disco#info")?.attrs.node,
      "open",
    );
    // Made-up resources: at most 10 subscriptions per account on a node.
    let refused = "";
    for (let i = 0; i < 12 && !refused; i++) {
      const r = await iq(
        nurse,
        "set",
        ps(`<subscribe node='open' jid='nurse@localhost/fake${i}'/>`),
      );
      if (r.attrs.type === "error") refused = `${i} ${errorOf(r)}`;
    }
    assert.equal(refused, "10 resource-constraint");
  });
});

Deno.test("pubsub: the items of all nodes together are capped (pubsub_max_total_size)", async () => {
  const t = await startTestServer({
    ...OPTIONS,
    components: { [SERVICE]: { module: "pubsub", pubsub_max_total_size: 1024 } },
  });
  const c = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await c.login("juliet", "pw", "r");
    const big = "x".repeat(400);
    for (const node of ["a", "b", "c"]) await iq(c, "set", ps(`<create node='${node}'/>`));
    assert.equal((await iq(c, "set", publish("a", "1", big))).attrs.type, "result");
    assert.equal((await iq(c, "set", publish("b", "1", big))).attrs.type, "result");
    assert.equal(errorOf(await iq(c, "set", publish("c", "1", big))), "resource-constraint");
    await iq(c, "set", owner("<purge node='a'/>"));
    assert.equal((await iq(c, "set", publish("c", "1", big))).attrs.type, "result");
  } finally {
    c.close();
    await t.stop();
  }
});

Deno.test("pubsub: subscription options — deliver off stops notifications, on brings them back; bad options change nothing", async () => {
  await withService(async (_t, login) => {
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    await iq(juliet, "set", ps("<create node='opts'/>"));
    const form = (deliver: string, extra = "") =>
      `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>` +
      `<value>${PUBSUB}#subscribe_options</value></field>` +
      `<field var='pubsub#deliver'><value>${deliver}</value></field>${extra}</x>`;
    // Subscribed with delivery off from the start (options in the same request).
    const sub = await iq(
      romeo,
      "set",
      ps(`<subscribe node='opts' jid='romeo@localhost/r'/><options>${form("0")}</options>`),
    );
    assert.equal(sub.attrs.type, "result");
    const got = await iq(romeo, "get", ps("<options node='opts' jid='romeo@localhost/r'/>"));
    assert.match(
      got.toString(),
      /<field var="pubsub#deliver" type="boolean"[^>]*><value>0<\/value>/,
    );
    await iq(juliet, "set", publish("opts", "quiet", "unheard"));
    // Bad options (a field the service does not know, a non-boolean) change nothing.
    const bad = await iq(
      romeo,
      "set",
      ps(
        `<options node='opts' jid='romeo@localhost/r'>${
          form("1", "<field var='pubsub#digest'><value>1</value></field>")
        }</options>`,
      ),
    );
    assert.equal(errorOf(bad), "bad-request invalid-options");
    assert.equal(
      errorOf(
        await iq(
          romeo,
          "set",
          ps(`<options node='opts' jid='romeo@localhost/r'>${form("maybe")}</options>`),
        ),
      ),
      "bad-request invalid-options",
    );
    assert.equal(
      errorOf(
        await iq(
          romeo,
          "set",
          ps(`<options node='opts' jid='juliet@localhost'>${form("1")}</options>`),
        ),
      ),
      "forbidden",
    );
    await iq(juliet, "set", publish("opts", "quiet2", "unheard"));
    // Delivery on again: the next item arrives, and the quiet ones never did.
    assert.equal(
      (await iq(
        romeo,
        "set",
        ps(`<options node='opts' jid='romeo@localhost/r'>${form("1")}</options>`),
      )).attrs.type,
      "result",
    );
    await iq(juliet, "set", publish("opts", "loud", "heard"));
    await romeo.waitFor(/<item id="loud">/);
    assert.doesNotMatch(romeo.received, /<item id="quiet/);
  });
});
