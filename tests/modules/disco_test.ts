/** XEP-0030 for accounts and the host: what a user learns about their own account and others'. */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

const OPTIONS = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};
const INFO = "http://jabber.org/protocol/disco#info";
const ITEMS = "http://jabber.org/protocol/disco#items";

Deno.test("disco: one's own account lists the disco features; others only to contacts; the host lists jabber:iq:register", async () => {
  const t = await startTestServer(OPTIONS);
  const clients: RawClient[] = [];
  try {
    for (const u of ["romeo", "juliet", "tybalt"]) {
      await t.server.users("localhost")!.createUser(u, "pw");
    }
    await t.server.rosters.modify("juliet", "localhost", (r) => {
      r.items.set("romeo@localhost", { subscription: "from", groups: [] });
      return ["romeo@localhost"];
    });
    const login = async (user: string) => {
      const c = await RawClient.connect(t.port);
      clients.push(c);
      await c.login(user, "pw");
      return c;
    };
    const [juliet, romeo, tybalt] = [
      await login("juliet"),
      await login("romeo"),
      await login("tybalt"),
    ];
    const ask = async (c: RawClient, id: string, to: string | undefined, xmlns: string) => {
      const attr = to === undefined ? "" : ` to='${to}'`;
      c.send(`<iq type='get' id='${id}'${attr}><query xmlns='${xmlns}'/></iq>`);
      return (await c.waitFor(new RegExp(`<iq [^>]*id="${id}"(?:[^>]*\\/>|.*?<\\/iq>)`, "s")))[0];
    };

    // One's own account, with no `to` and to the bare JID: as Prosody, from the account.
    for (const [id, to] of [["s1", undefined], ["s2", "juliet@localhost"]] as const) {
      const own = await ask(juliet, id, to, INFO);
      assert.match(own, /type="result"/);
      assert.match(own, /from="juliet@localhost"/);
      assert.match(own, /<identity category="account" type="registered"\/>/);
      assert.match(own, new RegExp(`<feature var="${INFO}"/>`));
      assert.match(own, new RegExp(`<feature var="${ITEMS}"/>`));
    }
    const items = await ask(juliet, "s3", undefined, ITEMS);
    assert.match(
      items,
      /type="result" from="juliet@localhost"|from="juliet@localhost"[^>]*type="result"/,
    );

    // A contact entitled to juliet's presence may ask; anyone else learns nothing.
    assert.match(await ask(romeo, "c1", "juliet@localhost", INFO), /<identity category="account"/);
    for (
      const [id, to, xmlns] of [
        ["o1", "juliet@localhost", INFO],
        ["o2", "juliet@localhost", ITEMS],
        ["o3", "nobody@localhost", INFO],
      ]
    ) {
      const answer = await ask(tybalt, id, to, xmlns);
      assert.match(answer, /type="error"/);
      assert.match(answer, /<service-unavailable /);
      assert.doesNotMatch(answer, /<identity/);
    }

    // The host: password change works, so jabber:iq:register is listed (Prosody does the same).
    const host = await ask(juliet, "h1", "localhost", INFO);
    assert.match(host, /<feature var="jabber:iq:register"\/>/);
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
});
