/**
 * Message Archive Management (XEP-0313) on the wire: what is archived (both
 * directions, once, stanza-ids), queries with every filter, paging both ways,
 * flipped pages, metadata, preferences, and the errors for bad queries.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { parseXml } from "../../core/xml/parser.ts";
import { message, type Stanza } from "../../core/xml/stanza.ts";

const MAM = "urn:xmpp:mam:2";
const PLAIN = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};

async function withServer(
  options: Record<string, unknown>,
  fn: (
    t: TestServer,
    login: (user: string, resource?: string) => Promise<RawClient>,
  ) => Promise<void>,
) {
  const t = await startTestServer({ ...PLAIN, ...options });
  const clients: RawClient[] = [];
  try {
    for (const u of ["juliet", "romeo", "nurse"]) {
      await t.server.users("localhost")!.createUser(u, "pw");
    }
    await fn(t, async (user, resource = "r") => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(user, "pw", resource);
      c.send("<presence/>");
      await c.waitFor(/<presence /);
      c.clear();
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
}

let seq = 0;
/** Sends a query and returns the result messages and the final iq, parsed. */
async function query(
  c: RawClient,
  inner = "",
  attrs = "",
): Promise<{ results: Stanza[]; fin: Stanza }> {
  const id = `q${++seq}`;
  c.clear();
  c.send(
    `<iq type='set' id='${id}'><query xmlns='${MAM}' queryid='${id}' ${attrs}>${inner}</query></iq>`,
  );
  // The final iq: self-closing, or up to its </iq>.
  const end = await c.waitFor(new RegExp(`<iq [^>]*id="${id}"[^>]*?(/>|>[^]*?</iq>)`));
  const text = c.received.slice(0, (end.index ?? 0) + end[0].length);
  const stanzas = parseXml(`<root>${text}</root>`).tags();
  return {
    results: stanzas.filter((s) => s.name === "message" && s.getChild("result", MAM)),
    fin: stanzas.find((s) => s.name === "iq")!,
  };
}

function form(fields: Record<string, string | string[]>): string {
  let x =
    `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${MAM}</value></field>`;
  for (const [k, v] of Object.entries(fields)) {
    x += `<field var='${k}'>${
      (Array.isArray(v) ? v : [v]).map((s) => `<value>${s}</value>`).join("")
    }</field>`;
  }
  return x + "</x>";
}

const rsm = (inner: string) => `<set xmlns='http://jabber.org/protocol/rsm'>${inner}</set>`;
const bodies = (r: Stanza[]) =>
  r.map((m) =>
    m.getChild("result", MAM)!.getChild("forwarded", "urn:xmpp:forward:0")!.getChild(
      "message",
      "jabber:client",
    )!
      .getChildText("body")
  );
const ids = (r: Stanza[]) => r.map((m) => m.getChild("result", MAM)!.attrs.id!);
const finOf = (iq: Stanza) => iq.getChild("fin", MAM)!;

/** Romeo sends juliet n messages b0..b(n-1); returns once she got the last. */
async function chat(romeo: RawClient, juliet: RawClient, n: number, prefix = "b") {
  let burst = "";
  for (let i = 0; i < n; i++) {
    burst +=
      `<message to='juliet@localhost' type='chat' id='${prefix}${i}'><body>${prefix}${i}</body></message>`;
  }
  romeo.send(burst);
  await juliet.waitFor(new RegExp(`<body>${prefix}${n - 1}</body>`), 20_000);
}

Deno.test("mam: messages are archived for sender and receiver, with a stanza-id for the receiver", async () => {
  await withServer({}, async (_t, login) => {
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    // A spoofed stanza-id from the sender is dropped.
    romeo.send(
      "<message to='juliet@localhost/r' type='chat' id='m1'><body>hello</body>" +
        "<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@localhost' id='fake'/></message>",
    );
    const got = parseXml((await juliet.waitFor(/<message [^]*?<\/message>/))[0]);
    const sids = got.tags().filter((c) => c.name === "stanza-id");
    assert.equal(sids.length, 1);
    assert.equal(sids[0].attrs.by, "juliet@localhost");
    assert.notEqual(sids[0].attrs.id, "fake");
    // Not archived: no body, a no-store hint, a headline.
    romeo.send(
      "<message to='juliet@localhost/r' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
    );
    romeo.send(
      "<message to='juliet@localhost/r' type='chat'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>",
    );
    romeo.send("<message to='juliet@localhost/r' type='headline'><body>news</body></message>");
    romeo.send("<message to='juliet@localhost/r' type='chat' id='m2'><body>again</body></message>");
    await juliet.waitFor(/<body>again/);
    const j = await query(juliet);
    assert.deepEqual(bodies(j.results), ["hello", "again"]);
    assert.equal(ids(j.results)[0], sids[0].attrs.id, "the stanza-id is the archive id");
    const r = await query(romeo);
    assert.deepEqual(bodies(r.results), ["hello", "again"]);
    // The forwarded copy says where it came from, in the client namespace, with a delay stamp.
    const fwd = j.results[0].getChild("result", MAM)!.getChild("forwarded", "urn:xmpp:forward:0")!;
    assert.match(
      fwd.getChild("delay", "urn:xmpp:delay")!.attrs.stamp!,
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
    );
    assert.equal(fwd.getChild("message", "jabber:client")!.attrs.xmlns, "jabber:client");
    assert.equal(fwd.getChild("message", "jabber:client")!.attrs.from, "romeo@localhost/r");
    assert.equal(j.results[0].getChild("result", MAM)!.attrs.queryid, "q1");
    assert.equal(finOf(j.fin).attrs.complete, "true");
  });
});

Deno.test("mam: a message to an offline user is archived once and stored offline with its stanza-id", async () => {
  await withServer({}, async (t, login) => {
    const romeo = await login("romeo");
    romeo.send(
      "<message to='juliet@localhost' type='chat' id='o1'><body>while away</body></message>",
    );
    romeo.send("<iq type='get' id='s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await romeo.waitFor(/id="s"/);
    const juliet = await RawClient.connect(t.port);
    try {
      await juliet.login("juliet", "pw", "r");
      juliet.send("<presence/>");
      const m = parseXml((await juliet.waitFor(/<message [^]*?<\/message>/))[0]);
      const sid = m.getChild("stanza-id", "urn:xmpp:sid:0")!.attrs.id;
      const j = await query(juliet);
      assert.deepEqual(bodies(j.results), ["while away"]);
      assert.deepEqual(ids(j.results), [sid]);
    } finally {
      juliet.close();
    }
  });
});

Deno.test("mam: paging forwards and backwards, flipped pages, before-id/after-id/ids, with, start/end", async () => {
  await withServer({ max_archive_query_results: 5 }, async (_t, login) => {
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    const nurse = await login("nurse");
    await chat(romeo, juliet, 12);
    nurse.send("<message to='juliet@localhost' type='chat'><body>from nurse</body></message>");
    await juliet.waitFor(/from nurse/);
    // Without a page size, the server's limit (5); oldest first.
    let p = await query(juliet);
    assert.deepEqual(bodies(p.results), ["b0", "b1", "b2", "b3", "b4"]);
    assert.equal(finOf(p.fin).attrs.complete, undefined);
    const set = finOf(p.fin).getChild("set", "http://jabber.org/protocol/rsm")!;
    assert.equal(set.getChildText("first"), ids(p.results)[0]);
    assert.equal(set.getChildText("last"), ids(p.results)[4]);
    const all: string[] = [...ids(p.results)];
    // Forwards with <after/>, to the end.
    for (;;) {
      p = await query(juliet, rsm(`<max>5</max><after>${all[all.length - 1]}</after>`));
      all.push(...ids(p.results));
      if (finOf(p.fin).attrs.complete === "true") break;
    }
    assert.equal(all.length, 13);
    // The last page: an empty <before/>, chronological within the page.
    p = await query(juliet, rsm("<max>3</max><before/>"));
    assert.deepEqual(bodies(p.results), ["b10", "b11", "from nurse"]);
    assert.equal(finOf(p.fin).attrs.complete, undefined);
    // Backwards from there to the start.
    const back: string[] = [...ids(p.results)];
    for (;;) {
      p = await query(juliet, rsm(`<max>3</max><before>${back[0]}</before>`));
      back.unshift(...ids(p.results));
      if (finOf(p.fin).attrs.complete === "true") break;
    }
    assert.deepEqual(back, all);
    // A flipped page: the same items, newest first.
    p = await query(juliet, rsm("<max>3</max><before/>") + "<flip-page/>");
    assert.deepEqual(bodies(p.results), ["from nurse", "b11", "b10"]);
    // with: only the nurse's.
    p = await query(juliet, form({ with: "nurse@localhost" }));
    assert.deepEqual(bodies(p.results), ["from nurse"]);
    // Between two known ids (extended fields).
    p = await query(juliet, form({ "after-id": all[2], "before-id": all[6] }));
    assert.deepEqual(bodies(p.results), ["b3", "b4", "b5"]);
    // Given ids, in archive order.
    p = await query(juliet, form({ ids: [all[7], all[1]] }));
    assert.deepEqual(bodies(p.results), ["b1", "b7"]);
    // start/end: everything up to now, nothing from the future.
    p = await query(
      juliet,
      form({ end: new Date(Date.now() + 1000).toISOString() }) + rsm("<max>1</max>"),
    );
    assert.deepEqual(bodies(p.results), ["b0"]);
    p = await query(juliet, form({ start: new Date(Date.now() + 60_000).toISOString() }));
    assert.deepEqual(bodies(p.results), []);
    assert.equal(finOf(p.fin).attrs.complete, "true");
    // max=0: just the count.
    p = await query(juliet, rsm("<max>0</max>"));
    assert.equal(p.results.length, 0);
    assert.equal(
      finOf(p.fin).getChild("set", "http://jabber.org/protocol/rsm")!.getChildText("count"),
      "13",
    );
  });
});

Deno.test("mam: bad queries get the errors XEP-0313 names, and nothing is sent", async () => {
  await withServer({}, async (_t, login) => {
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    await chat(romeo, juliet, 2);
    const error = async (inner: string, condition: string) => {
      const p = await query(juliet, inner);
      assert.equal(p.results.length, 0, inner);
      assert.equal(p.fin.attrs.type, "error", inner);
      assert.ok(
        p.fin.getChild("error")!.getChild(condition, "urn:ietf:params:xml:ns:xmpp-stanzas"),
        `${condition} for ${inner}: ${p.fin}`,
      );
    };
    await error(form({ "urn:example:free-text-search": "x" }), "feature-not-implemented");
    await error(form({ start: "yesterday" }), "bad-request");
    await error(form({ with: "@@" }), "jid-malformed");
    await error(rsm("<after>no-such-id</after>"), "item-not-found");
    await error(form({ "before-id": "no-such-id" }), "item-not-found");
    await error(form({ ids: ["no-such-id"] }), "item-not-found");
    await error(rsm("<max>many</max>"), "bad-request");
    await error(
      `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x>`,
      "bad-request",
    );
    // Someone else's archive is not for querying.
    romeo.clear();
    romeo.send(`<iq type='set' id='x' to='juliet@localhost'><query xmlns='${MAM}'/></iq>`);
    await romeo.waitFor(/id="x"[^>]*type="error"|type="error"[^>]*id="x"/);
    assert.doesNotMatch(romeo.received, /<result /);
    // The archive is intact.
    assert.equal((await query(juliet)).results.length, 2);
  });
});

Deno.test("mam: same-second messages come back in the order they were sent, with sub-second stamps", async () => {
  await withServer({}, async (_t, login) => {
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    await chat(romeo, juliet, 30);
    const p = await query(juliet, rsm("<max>30</max>"));
    assert.deepEqual(bodies(p.results), Array.from({ length: 30 }, (_, i) => `b${i}`));
    const stamps = p.results.map((m) =>
      m.getChild("result", MAM)!.getChild("forwarded", "urn:xmpp:forward:0")!.getChild(
        "delay",
        "urn:xmpp:delay",
      )!
        .attrs.stamp!
    );
    assert.deepEqual([...stamps].sort(), stamps, "stamps never go backwards");
  });
});

Deno.test("mam: metadata, the query form, and the account's disco features", async () => {
  await withServer({}, async (_t, login) => {
    const juliet = await login("juliet");
    juliet.send(`<iq type='get' id='md'><metadata xmlns='${MAM}'/></iq>`);
    await juliet.waitFor(/<metadata xmlns="urn:xmpp:mam:2"\/>/); // empty archive
    const romeo = await login("romeo");
    await chat(romeo, juliet, 3);
    const all = ids((await query(juliet)).results);
    juliet.clear();
    juliet.send(`<iq type='get' id='md2'><metadata xmlns='${MAM}'/></iq>`);
    const md = parseXml((await juliet.waitFor(/<iq [^>]*id="md2"[^]*?<\/iq>/))[0]).getChild(
      "metadata",
      MAM,
    )!;
    assert.equal(md.getChild("start")!.attrs.id, all[0]);
    assert.equal(md.getChild("end")!.attrs.id, all[2]);
    juliet.clear();
    juliet.send(`<iq type='get' id='f'><query xmlns='${MAM}'/></iq>`);
    const f = (await juliet.waitFor(/<iq [^>]*id="f"[^]*?<\/iq>/))[0];
    for (const v of ["with", "start", "end", "before-id", "after-id", "ids"]) {
      assert.match(f, new RegExp(`var="${v}"`));
    }
    juliet.clear();
    juliet.send(
      "<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    const d = (await juliet.waitFor(/<iq [^>]*id="d"[^]*?<\/iq>/))[0];
    for (const v of [MAM, `${MAM}#extended`, "urn:xmpp:sid:0"]) {
      assert.match(d, new RegExp(`var="${v}"`));
    }
  });
});

Deno.test("mam: preferences decide what is archived; roster, always and never", async () => {
  await withServer({}, async (t, login) => {
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    const nurse = await login("nurse");
    await t.server.rosters.modify("juliet", "localhost", (r) => {
      r.items.set("romeo@localhost", { subscription: "both", groups: [] });
      return ["romeo@localhost"];
    });
    juliet.send(
      `<iq type='set' id='p'><prefs xmlns='${MAM}' default='roster'><always/>` +
        `<never><jid>romeo@localhost</jid></never></prefs></iq>`,
    );
    await juliet.waitFor(/id="p"[^]*default="roster"/);
    juliet.send(`<iq type='get' id='p2'><prefs xmlns='${MAM}'/></iq>`);
    await juliet.waitFor(/id="p2"[^]*<never><jid>romeo@localhost<\/jid><\/never>/);
    // romeo: in her roster but never archived; nurse: not in her roster.
    romeo.send("<message to='juliet@localhost' type='chat'><body>r</body></message>");
    nurse.send("<message to='juliet@localhost' type='chat'><body>n</body></message>");
    await juliet.waitFor(/<body>n</);
    await juliet.waitFor(/<body>r</);
    assert.deepEqual(bodies((await query(juliet)).results), []);
    // Always.
    juliet.send(`<iq type='set' id='p3'><prefs xmlns='${MAM}' default='always'/></iq>`);
    await juliet.waitFor(/id="p3"/);
    nurse.send("<message to='juliet@localhost' type='chat'><body>n2</body></message>");
    await juliet.waitFor(/<body>n2</);
    assert.deepEqual(bodies((await query(juliet)).results), ["n2"]);
    // A bad default is refused.
    juliet.clear();
    juliet.send(`<iq type='set' id='p4'><prefs xmlns='${MAM}' default='sometimes'/></iq>`);
    await juliet.waitFor(/id="p4"[^]*<bad-request/);
  });
});

Deno.test("mam: archive_expires_after removes old messages in the background; archive_max_items keeps the newest", async () => {
  await withServer({ archive_expires_after: "1w", archive_max_items: 3 }, async (t, login) => {
    const juliet = await login("juliet");
    const romeo = await login("romeo");
    // Two messages from long ago, stored as the module stores them.
    const archive = t.server.storage.open("localhost", "archive", "archive");
    const now = Date.now() / 1000;
    await archive.append(
      "nurse",
      null,
      message({ type: "chat" }, "old1"),
      now - 8 * 86400,
      "x@localhost",
    );
    await archive.append(
      "nurse",
      null,
      message({ type: "chat" }, "old2"),
      now - 7.5 * 86400,
      "x@localhost",
    );
    await archive.append(
      "nurse",
      null,
      message({ type: "chat" }, "recent"),
      now - 6 * 86400,
      "x@localhost",
    );
    const mam = t.server.modules.get("localhost", "mam")!;
    assert.equal(await (mam.exports.expire as () => Promise<number>)(), 2);
    const left = await archive.find("nurse");
    assert.deepEqual(left.map((i) => i.stanza.getChildText("body")), ["recent"]);
    // Over the quota the oldest go.
    await chat(romeo, juliet, 5);
    assert.deepEqual(bodies((await query(juliet)).results), ["b2", "b3", "b4"]);
  });
});

Deno.test("mam: a page of large messages reaches a stream-managed client; no cap closes its stream", async () => {
  await withServer({}, async (t, login) => {
    // 20 messages of 240 KB (under c2s_stanza_size_limit): 4.8 MB in one page, far past the
    // 1 MiB output cap if sent at once, and unacknowledged until the page is done.
    const archive = t.server.storage.open("localhost", "archive", "archive");
    const big = "x".repeat(240 * 1024);
    for (let i = 0; i < 20; i++) {
      await archive.append(
        "juliet",
        null,
        message({ from: "romeo@localhost/r", to: "juliet@localhost", type: "chat" }, big),
        Date.now() / 1000,
        "romeo@localhost",
      );
    }
    const juliet = await login("juliet");
    juliet.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    await juliet.waitFor(/<enabled /);
    juliet.clear();
    juliet.send(
      `<iq type='set' id='big'><query xmlns='${MAM}' queryid='b'>${
        rsm("<max>50</max>")
      }</query></iq>`,
    );
    await juliet.waitFor(/<iq [^>]*id="big"[^]*?<\/iq>/, 20_000);
    assert.equal(juliet.received.match(/<result xmlns="urn:xmpp:mam:2"/g)?.length, 20);
    assert.doesNotMatch(juliet.received, /<stream:error>/);
    assert.equal(juliet.closed, false);
  });
});
