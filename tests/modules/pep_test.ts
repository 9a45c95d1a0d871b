/**
 * PEP (XEP-0163) on the wire: publishing creates nodes, publish-options
 * become or must match the configuration, access models decide who reads,
 * items are kept up to max_items and survive a restart, owners configure,
 * purge and delete.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { parseXml } from "../../core/xml/parser.ts";
import type { Stanza } from "../../core/xml/stanza.ts";
import { capsVer } from "../../core/xml/caps.ts";

const PUBSUB = "http://jabber.org/protocol/pubsub";
const OWNER = "http://jabber.org/protocol/pubsub#owner";
const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};

type Login = (user: string, resource?: string) => Promise<RawClient>;

async function withServer(
  options: Record<string, unknown>,
  fn: (t: TestServer, login: Login) => Promise<void>,
  dataDir?: string,
) {
  const t = await startTestServer({ ...PLAIN, ...options }, dataDir);
  const clients: RawClient[] = [];
  try {
    await fn(t, async (user, resource = "r") => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(user, "pw", resource);
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await t.stop({ keepData: dataDir !== undefined });
  }
}

/** Juliet and romeo; `rel` is the subscription juliet's roster has for romeo (and the mirror). */
async function accounts(t: TestServer, rel: "both" | "none" = "both", groups: string[] = []) {
  const mirror = { both: "both", none: "none" } as const;
  for (const [user, contact, sub] of [["juliet", "romeo", rel], ["romeo", "juliet", mirror[rel]]]) {
    await t.server.users("localhost")!.createUser(user, "pw");
    await t.server.rosters.modify(user, "localhost", (r) => {
      r.items.set(`${contact}@localhost`, {
        subscription: sub as "both",
        groups: user === "juliet" ? groups : [],
      });
      return [`${contact}@localhost`];
    });
  }
  await t.server.users("localhost")!.createUser("nurse", "pw");
}

let seq = 0;
/** Sends an iq and returns its answer, parsed. */
async function iq(c: RawClient, type: string, inner: string, to = ""): Promise<Stanza> {
  const id = `p${++seq}`;
  c.send(`<iq type='${type}' id='${id}'${to ? ` to='${to}'` : ""}>${inner}</iq>`);
  const m = await c.waitFor(new RegExp(`<iq [^>]*id="${id}"[^>]*?(/>|>[^]*?</iq>)`));
  return parseXml(m[0]);
}

function publishOptions(fields: Record<string, string>): string {
  let x = "<publish-options><x xmlns='jabber:x:data' type='submit'>" +
    `<field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#publish-options</value></field>`;
  for (const [k, v] of Object.entries(fields)) x += `<field var='${k}'><value>${v}</value></field>`;
  return x + "</x></publish-options>";
}

function publish(node: string, id: string, payload: string, options = ""): string {
  return `<pubsub xmlns='${PUBSUB}'><publish node='${node}'><item id='${id}'>${payload}</item>` +
    `</publish>${options}</pubsub>`;
}

const errorOf = (r: Stanza) => {
  const e = r.getChild("error");
  return e?.tags().filter((c) => c.name !== "text").map((c) => c.name).join(" ");
};
const itemIds = (r: Stanza) =>
  r.getChild("pubsub", PUBSUB)?.getChild("items", PUBSUB)?.tags().map((i) => i.attrs.id) ?? [];

Deno.test("pep: publishing creates the node; its owner and subscribed contacts read it, others not", async () => {
  await withServer({}, async (t, login) => {
    await accounts(t);
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    const nurse = await login("nurse");
    const r = await iq(
      juliet,
      "set",
      publish("urn:xmpp:nick", "n1", "<nick xmlns='http://jabber.org/protocol/nick'>J</nick>"),
    );
    assert.equal(r.attrs.type, "result");
    const get = `<pubsub xmlns='${PUBSUB}'><items node='urn:xmpp:nick'/></pubsub>`;
    assert.deepEqual(itemIds(await iq(juliet, "get", get)), ["n1"]);
    const fromRomeo = await iq(romeo, "get", get, "juliet@localhost");
    assert.deepEqual(itemIds(fromRomeo), ["n1"]);
    assert.match(
      fromRomeo.toString(),
      /<nick xmlns="http:\/\/jabber.org\/protocol\/nick">J<\/nick>/,
    );
    // The default access model is presence: the nurse has no subscription.
    const denied = await iq(nurse, "get", get, "juliet@localhost");
    assert.equal(errorOf(denied), "not-authorized presence-subscription-required");
    // An unknown node.
    const none = await iq(
      romeo,
      "get",
      `<pubsub xmlns='${PUBSUB}'><items node='nope'/></pubsub>`,
      "juliet@localhost",
    );
    assert.equal(errorOf(none), "item-not-found");
  });
});

Deno.test("pep: publish-options create an open node; a different precondition later is refused, nothing changed", async () => {
  await withServer({}, async (t, login) => {
    await accounts(t, "none");
    const juliet = await login("juliet");
    const nurse = await login("nurse");
    const node = "eu.siacs.conversations.axolotl.devicelist";
    const list = "<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/></list>";
    const open = publishOptions({ "pubsub#access_model": "open" });
    assert.equal(
      (await iq(juliet, "set", publish(node, "current", list, open))).attrs.type,
      "result",
    );
    // Open: anyone reads it, no subscription needed (what OMEMO needs).
    const get = `<pubsub xmlns='${PUBSUB}'><items node='${node}'/></pubsub>`;
    assert.deepEqual(itemIds(await iq(nurse, "get", get, "juliet@localhost")), ["current"]);
    // Publishing with another access model: precondition-not-met, the item is not replaced.
    const other = "<list xmlns='eu.siacs.conversations.axolotl'><device id='2'/></list>";
    const refused = await iq(
      juliet,
      "set",
      publish(node, "current", other, publishOptions({ "pubsub#access_model": "presence" })),
    );
    assert.equal(errorOf(refused), "conflict precondition-not-met");
    const still = await iq(juliet, "get", get);
    assert.match(still.toString(), /<device id="1"\/>/);
    // The same options again: accepted.
    assert.equal(
      (await iq(juliet, "set", publish(node, "current", other, open))).attrs.type,
      "result",
    );
    // An option this server does not have: precondition-not-met, no node made.
    const odd = await iq(
      juliet,
      "set",
      publish("n2", "a", "<x xmlns='urn:example'/>", publishOptions({ "pubsub#frobnicate": "1" })),
    );
    assert.equal(errorOf(odd), "conflict precondition-not-met");
    const gone = await iq(juliet, "get", `<pubsub xmlns='${PUBSUB}'><items node='n2'/></pubsub>`);
    assert.equal(errorOf(gone), "item-not-found");
  });
});

Deno.test("pep: max_items keeps the newest, 'max' too; retract; bad payloads and big items refused", async () => {
  await withServer({ pep_max_items: 5, pep_max_item_size: 200 }, async (t, login) => {
    await accounts(t);
    const juliet = await login("juliet");
    const node = "urn:xmpp:bookmarks:1";
    const max = publishOptions({ "pubsub#max_items": "max" });
    for (let i = 0; i < 7; i++) {
      const r = await iq(
        juliet,
        "set",
        publish(node, `b${i}`, `<conference xmlns='${node}'/>`, max),
      );
      assert.equal(r.attrs.type, "result");
    }
    const get = `<pubsub xmlns='${PUBSUB}'><items node='${node}'/></pubsub>`;
    assert.deepEqual(itemIds(await iq(juliet, "get", get)), ["b2", "b3", "b4", "b5", "b6"]);
    const latest = `<pubsub xmlns='${PUBSUB}'><items node='${node}' max_items='2'/></pubsub>`;
    assert.deepEqual(itemIds(await iq(juliet, "get", latest)), ["b5", "b6"]);
    const retract =
      `<pubsub xmlns='${PUBSUB}'><retract node='${node}' notify='true'><item id='b3'/></retract></pubsub>`;
    assert.equal((await iq(juliet, "set", retract)).attrs.type, "result");
    assert.equal(errorOf(await iq(juliet, "set", retract)), "item-not-found");
    assert.deepEqual(itemIds(await iq(juliet, "get", get)), ["b2", "b4", "b5", "b6"]);
    // Above pep_max_items: not acceptable.
    const tooMany = await iq(
      juliet,
      "set",
      publish(
        "other",
        "a",
        "<x xmlns='urn:example'/>",
        publishOptions({ "pubsub#max_items": "6" }),
      ),
    );
    assert.equal(errorOf(tooMany), "conflict precondition-not-met");
    // Larger than pep_max_item_size.
    const big = await iq(
      juliet,
      "set",
      publish(node, "big", `<x xmlns='urn:example'>${"y".repeat(300)}</x>`),
    );
    assert.equal(errorOf(big), "not-acceptable payload-too-big");
    // No payload; two payloads.
    assert.equal(
      errorOf(
        await iq(
          juliet,
          "set",
          `<pubsub xmlns='${PUBSUB}'><publish node='${node}'><item id='e'/></publish></pubsub>`,
        ),
      ),
      "bad-request payload-required",
    );
    assert.equal(
      errorOf(await iq(juliet, "set", publish(node, "e", "<a xmlns='x'/><b xmlns='x'/>"))),
      "bad-request invalid-payload",
    );
    assert.deepEqual(itemIds(await iq(juliet, "get", get)), ["b2", "b4", "b5", "b6"]);
  });
});

Deno.test("pep: the owner configures, purges and deletes; wrong forms change nothing", async () => {
  await withServer({}, async (t, login) => {
    await accounts(t, "both", ["Family"]);
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    const node = "urn:xmpp:avatar:metadata";
    await iq(juliet, "set", publish(node, "a1", `<metadata xmlns='${node}'/>`));
    const form = await iq(
      juliet,
      "get",
      `<pubsub xmlns='${OWNER}'><configure node='${node}'/></pubsub>`,
    );
    assert.match(form.toString(), /var="pubsub#access_model" type="list-single"><value>presence</);
    const configure = (fields: string) =>
      `<pubsub xmlns='${OWNER}'><configure node='${node}'><x xmlns='jabber:x:data' type='submit'>` +
      `<field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#node_config</value></field>${fields}` +
      "</x></configure></pubsub>";
    // Wrong types: refused, configuration as it was.
    const bad = await iq(
      juliet,
      "set",
      configure("<field var='pubsub#persist_items'><value>maybe</value></field>"),
    );
    assert.equal(errorOf(bad), "not-acceptable");
    // Roster access: romeo is in no allowed group yet.
    const roster = "<field var='pubsub#access_model'><value>roster</value></field>" +
      "<field var='pubsub#roster_groups_allowed'><value>Friends</value></field>";
    assert.equal((await iq(juliet, "set", configure(roster))).attrs.type, "result");
    const get = `<pubsub xmlns='${PUBSUB}'><items node='${node}'/></pubsub>`;
    assert.equal(
      errorOf(await iq(romeo, "get", get, "juliet@localhost")),
      "not-authorized not-in-roster-group",
    );
    await iq(
      juliet,
      "set",
      configure("<field var='pubsub#roster_groups_allowed'><value>Family</value></field>"),
    );
    assert.deepEqual(itemIds(await iq(romeo, "get", get, "juliet@localhost")), ["a1"]);
    // Whitelist: the owner only.
    await iq(
      juliet,
      "set",
      configure("<field var='pubsub#access_model'><value>whitelist</value></field>"),
    );
    assert.equal(
      errorOf(await iq(romeo, "get", get, "juliet@localhost")),
      "not-allowed closed-node",
    );
    // Purge, then delete.
    assert.equal(
      (await iq(juliet, "set", `<pubsub xmlns='${OWNER}'><purge node='${node}'/></pubsub>`)).attrs
        .type,
      "result",
    );
    assert.deepEqual(itemIds(await iq(juliet, "get", get)), []);
    assert.equal(
      (await iq(juliet, "set", `<pubsub xmlns='${OWNER}'><delete node='${node}'/></pubsub>`)).attrs
        .type,
      "result",
    );
    assert.equal(errorOf(await iq(juliet, "get", get)), "item-not-found");
  });
});

Deno.test("pep: nodes and items survive a restart; the account advertises PEP", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-pep-" });
  try {
    await withServer({}, async (t, login) => {
      await accounts(t);
      const juliet = await login("juliet");
      const open = publishOptions({ "pubsub#access_model": "open", "pubsub#max_items": "3" });
      for (const id of ["x", "y"]) {
        await iq(
          juliet,
          "set",
          publish("urn:example:n", id, `<v xmlns='urn:example'>${id}</v>`, open),
        );
      }
      const info = await iq(
        juliet,
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
        "juliet@localhost",
      );
      assert.match(info.toString(), /<identity category="pubsub" type="pep"\/>/);
      assert.match(info.toString(), /#publish-options"/);
    }, dir);
    await withServer({}, async (_t, login) => {
      const nurse = await login("nurse");
      const r = await iq(
        nurse,
        "get",
        `<pubsub xmlns='${PUBSUB}'><items node='urn:example:n'/></pubsub>`,
        "juliet@localhost",
      );
      assert.deepEqual(itemIds(r), ["x", "y"]);
      assert.match(r.toString(), /<v xmlns="urn:example">y<\/v>/);
    }, dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/**
 * Logs in and sends available presence with caps for `features`; answers the
 * server's disco#info for them (when asked: a cached ver is not asked again).
 */
async function withCaps(login: Login, user: string, resource: string, features: string[]) {
  const c = await login(user, resource);
  const query = parseXml(
    "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc' name='t'/>" +
      features.map((f) => `<feature var='${f}'/>`).join("") + "</query>",
  );
  const ver = await capsVer(query);
  c.send(
    `<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='urn:t' ver='${ver}'/></presence>`,
  );
  const asked = await c.waitFor(
    /<iq [^>]*type="get"[^>]*><query xmlns="http:\/\/jabber.org\/protocol\/disco#info"[^>]*\/><\/iq>/,
    1000,
  )
    .catch(() => undefined);
  if (asked) {
    const q = parseXml(asked[0]);
    const inner = query.children.map((x) => x.toString()).join("");
    c.send(
      `<iq type='result' id='${q.attrs.id}' to='${q.attrs.from}'>` +
        `<query xmlns='http://jabber.org/protocol/disco#info' node='urn:t#${ver}'>${inner}</query></iq>`,
    );
  }
  return c;
}

Deno.test("pep: a publish reaches the owner's and contacts' resources with +notify, no one else", async () => {
  await withServer({}, async (t, login) => {
    await accounts(t);
    const NICK = "http://jabber.org/protocol/nick";
    const interested = [NICK + "+notify", "http://jabber.org/protocol/disco#info"];
    const romeo = await withCaps(login, "romeo", "phone", interested);
    const romeoDesk = await withCaps(login, "romeo", "desk", [
      "http://jabber.org/protocol/disco#info",
    ]);
    const nurse = await withCaps(login, "nurse", "r", interested); // no subscription
    const juliet = await withCaps(login, "juliet", "a", interested);
    const julietB = await login("juliet", "b"); // no caps, no notifications
    julietB.send("<presence/>");
    await new Promise((r) => setTimeout(r, 200)); // (caps answers processed)
    for (const c of [romeo, romeoDesk, nurse, juliet, julietB]) c.clear();

    await iq(juliet, "set", publish(NICK, "n1", `<nick xmlns='${NICK}'>Jules</nick>`));
    const event =
      /<message from="juliet@localhost" (?:to="[^"]+" )?type="headline"(?: to="[^"]+")?><event xmlns="http:\/\/jabber.org\/protocol\/pubsub#event"><items node="http:\/\/jabber.org\/protocol\/nick"><item id="n1"><nick xmlns="http:\/\/jabber.org\/protocol\/nick">Jules<\/nick><\/item><\/items><\/event><\/message>/;
    await romeo.waitFor(event);
    await juliet.waitFor(event);
    await new Promise((r) => setTimeout(r, 200));
    for (const c of [romeoDesk, nurse, julietB]) assert.doesNotMatch(c.received, /pubsub#event/);

    // Retraction is notified too.
    romeo.clear();
    await iq(
      juliet,
      "set",
      `<pubsub xmlns='${PUBSUB}'><retract node='${NICK}'><item id='n1'/></retract></pubsub>`,
    );
    await romeo.waitFor(
      /<items node="http:\/\/jabber.org\/protocol\/nick"><retract id="n1"\/><\/items>/,
    );
  });
});

Deno.test("pep: a contact's resource gets the last item when its +notify becomes known", async () => {
  await withServer({}, async (t, login) => {
    await accounts(t);
    const juliet = await login("juliet");
    const TUNE = "http://jabber.org/protocol/tune";
    await iq(juliet, "set", publish(TUNE, "t1", `<tune xmlns='${TUNE}'><title>One</title></tune>`));
    await iq(juliet, "set", publish(TUNE, "t2", `<tune xmlns='${TUNE}'><title>Two</title></tune>`));
    const romeo = await withCaps(login, "romeo", "r", [TUNE + "+notify"]);
    await romeo.waitFor(
      /<item id="t2"><tune xmlns="http:\/\/jabber.org\/protocol\/tune"><title>Two<\/title>/,
    );
    assert.doesNotMatch(romeo.received, /id="t1"/); // only the last
    const nurse = await withCaps(login, "nurse", "r", [TUNE + "+notify"]);
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(nurse.received, /pubsub#event/); // no subscription: nothing
  });
});

Deno.test("pep: the account's disco items list the nodes the asker may read", async () => {
  await withServer({}, async (t, login) => {
    await accounts(t);
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    const open = publishOptions({ "pubsub#access_model": "open" });
    const whitelist = publishOptions({ "pubsub#access_model": "whitelist" });
    await iq(juliet, "set", publish("urn:example:open", "a", "<v xmlns='urn:example'/>", open));
    await iq(juliet, "set", publish("urn:example:contacts", "a", "<v xmlns='urn:example'/>"));
    await iq(
      juliet,
      "set",
      publish("urn:example:mine", "a", "<v xmlns='urn:example'/>", whitelist),
    );
    const items = "<query xmlns='http://jabber.org/protocol/disco#items'/>";
    const nodes = (r: Stanza) =>
      r.getChild("query", "http://jabber.org/protocol/disco#items")!.tags().map((i) => i.attrs.node)
        .sort();
    assert.deepEqual(nodes(await iq(juliet, "get", items, "juliet@localhost")), [
      "urn:example:contacts",
      "urn:example:mine",
      "urn:example:open",
    ]);
    assert.deepEqual(nodes(await iq(romeo, "get", items, "juliet@localhost")), [
      "urn:example:contacts",
      "urn:example:open",
    ]);
  });
});

Deno.test("pep: an account's items are capped in size (pep_max_account_size); nothing half-made", async () => {
  await withServer({ pep_max_account_size: 1024 }, async (t, login) => {
    await accounts(t);
    const juliet = await login("juliet");
    const big = (n: number) => `<v xmlns='urn:example'>${"x".repeat(n)}</v>`;
    const max = publishOptions({ "pubsub#max_items": "10" });
    for (const id of ["a", "b", "c"]) {
      assert.equal(
        (await iq(juliet, "set", publish("urn:example:n", id, big(300), max))).attrs.type,
        "result",
      );
    }
    // A fourth would pass 1,024: refused; replacing one of the three is fine.
    assert.equal(
      errorOf(await iq(juliet, "set", publish("urn:example:n", "d", big(300)))),
      "resource-constraint",
    );
    assert.equal(
      (await iq(juliet, "set", publish("urn:example:n", "a", big(200)))).attrs.type,
      "result",
    );
    // A new node that cannot take its first item is not created.
    assert.equal(
      errorOf(await iq(juliet, "set", publish("urn:example:other", "x", big(400)))),
      "resource-constraint",
    );
    const none = await iq(
      juliet,
      "get",
      `<pubsub xmlns='${PUBSUB}'><items node='urn:example:other'/></pubsub>`,
    );
    assert.equal(errorOf(none), "item-not-found");
    // Retracting frees room.
    await iq(
      juliet,
      "set",
      `<pubsub xmlns='${PUBSUB}'><retract node='urn:example:n'><item id='b'/></retract></pubsub>`,
    );
    assert.equal(
      (await iq(juliet, "set", publish("urn:example:n", "d", big(300)))).attrs.type,
      "result",
    );
  });
});

Deno.test("pep: a contact whose subscription is approved gets the last items at once", async () => {
  await withServer({}, async (t, login) => {
    await accounts(t, "none");
    const juliet = await login("juliet");
    juliet.send("<presence/>");
    const GEO = "http://jabber.org/protocol/geoloc";
    await iq(
      juliet,
      "set",
      publish(GEO, "g1", `<geoloc xmlns='${GEO}'><locality>Verona</locality></geoloc>`),
    );
    const romeo = await withCaps(login, "romeo", "r", [GEO + "+notify"]);
    await new Promise((r) => setTimeout(r, 200));
    assert.doesNotMatch(romeo.received, /pubsub#event/); // not entitled yet
    romeo.send("<presence to='juliet@localhost' type='subscribe'/>");
    await juliet.waitFor(/type="subscribe"/);
    juliet.send("<presence to='romeo@localhost' type='subscribed'/>");
    await romeo.waitFor(
      /<item id="g1"><geoloc xmlns="http:\/\/jabber.org\/protocol\/geoloc"><locality>Verona<\/locality>/,
    );
  });
});

Deno.test("pep: explicit subscriptions bring notifications without caps, within the access model", async () => {
  await withServer({}, async (t, login) => {
    await accounts(t);
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    const nurse = await login("nurse");
    for (const c of [romeo, nurse]) c.send("<presence/>");
    const open = publishOptions({ "pubsub#access_model": "open" });
    await iq(juliet, "set", publish("urn:example:diary", "d0", "<v xmlns='urn:example'>0</v>"));
    await iq(
      juliet,
      "set",
      publish("urn:example:news", "n0", "<v xmlns='urn:example'>0</v>", open),
    );
    const sub = (c: RawClient, node: string, jid: string, op = "subscribe") =>
      iq(
        c,
        "set",
        `<pubsub xmlns='${PUBSUB}'><${op} node='${node}' jid='${jid}'/></pubsub>`,
        "juliet@localhost",
      );
    // Presence model: romeo (a contact) may, the nurse may not.
    const ok = await sub(romeo, "urn:example:diary", "romeo@localhost/r");
    assert.match(ok.toString(), /subscription="subscribed"/);
    await romeo.waitFor(/<item id="d0">/); // the last item
    assert.equal(
      errorOf(await sub(nurse, "urn:example:diary", "nurse@localhost")),
      "not-authorized presence-subscription-required",
    );
    // Open: the nurse may; another's JID is refused.
    assert.equal(
      errorOf(await sub(nurse, "urn:example:news", "romeo@localhost")),
      "bad-request invalid-jid",
    );
    await sub(nurse, "urn:example:news", "nurse@localhost");
    await iq(juliet, "set", publish("urn:example:diary", "d1", "<v xmlns='urn:example'>1</v>"));
    await iq(
      juliet,
      "set",
      publish("urn:example:news", "n1", "<v xmlns='urn:example'>1</v>", open),
    );
    await romeo.waitFor(/<item id="d1">/);
    await nurse.waitFor(/<item id="n1">/);
    assert.doesNotMatch(nurse.received, /id="d1"/);
    // Unsubscribing another's JID is forbidden; one's own works, and nothing comes after.
    assert.equal(
      errorOf(await sub(nurse, "urn:example:diary", "romeo@localhost/r", "unsubscribe")),
      "forbidden",
    );
    assert.equal(
      (await sub(nurse, "urn:example:news", "nurse@localhost", "unsubscribe")).attrs.type,
      "result",
    );
    nurse.clear();
    await iq(
      juliet,
      "set",
      publish("urn:example:news", "n2", "<v xmlns='urn:example'>2</v>", open),
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.doesNotMatch(nurse.received, /id="n2"/);
  });
});

Deno.test("pep: a contact on another of the server's hosts gets the last item when its +notify becomes known", async () => {
  const OTHER = "verona.localhost";
  await withServer({ virtual_hosts: { localhost: {}, [OTHER]: {} } }, async (t) => {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await t.server.users(OTHER)!.createUser("romeo", "pw");
    await t.server.rosters.modify("juliet", "localhost", (r) => {
      r.items.set(`romeo@${OTHER}`, { subscription: "both", groups: [] });
      return [`romeo@${OTHER}`];
    });
    await t.server.rosters.modify("romeo", OTHER, (r) => {
      r.items.set("juliet@localhost", { subscription: "both", groups: [] });
      return ["juliet@localhost"];
    });
    const clients: RawClient[] = [];
    try {
      const juliet = await RawClient.connect(t.port);
      clients.push(juliet);
      await juliet.login("juliet", "pw", "r");
      const TUNE = "http://jabber.org/protocol/tune";
      await iq(
        juliet,
        "set",
        publish(TUNE, "t1", `<tune xmlns='${TUNE}'><title>Far</title></tune>`),
      );
      const romeo = await withCaps(
        async (user, resource = "r") => {
          const c = await RawClient.connect(t.port);
          clients.push(c);
          await c.login(user, "pw", resource, OTHER);
          return c;
        },
        "romeo",
        "r",
        [TUNE + "+notify"],
      );
      await romeo.waitFor(
        /<message from="juliet@localhost" [^>]*><event [^>]*><items node="http:\/\/jabber.org\/protocol\/tune"><item id="t1">/,
      );
    } finally {
      for (const c of clients) c.close();
    }
  });
});

Deno.test("pep: publishing to or managing another account's nodes is forbidden, and changes nothing", async () => {
  await withServer({}, async (t, login) => {
    await accounts(t);
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    const NICK = "http://jabber.org/protocol/nick";
    await iq(juliet, "set", publish(NICK, "current", `<nick xmlns='${NICK}'>Jules</nick>`));
    const errorOf = (r: Stanza) =>
      r.getChild("error")?.tags().filter((c) => c.name !== "text").map((c) => c.name).join(" ");
    const pub = await iq(
      romeo,
      "set",
      publish(NICK, "current", `<nick xmlns='${NICK}'>Romeo</nick>`),
      "juliet@localhost",
    );
    assert.equal(errorOf(pub), "forbidden");
    const purge = await iq(
      romeo,
      "set",
      `<pubsub xmlns='${OWNER}'><purge node='${NICK}'/></pubsub>`,
      "juliet@localhost",
    );
    assert.equal(errorOf(purge), "forbidden");
    const conf = await iq(
      romeo,
      "get",
      `<pubsub xmlns='${OWNER}'><configure node='${NICK}'/></pubsub>`,
      "juliet@localhost",
    );
    assert.equal(errorOf(conf), "forbidden");
    const items = await iq(
      romeo,
      "get",
      `<pubsub xmlns='${PUBSUB}'><items node='${NICK}'/></pubsub>`,
      "juliet@localhost",
    );
    assert.match(
      items.toString(),
      /<nick xmlns="http:\/\/jabber.org\/protocol\/nick">Jules<\/nick>/,
    );
  });
});
