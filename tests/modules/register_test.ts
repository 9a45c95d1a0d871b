/** XEP-0077: registration on and off; password change and removal when logged in. */
import assert from "node:assert/strict";
import { RawClient, streamHeader } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

const BASE = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
};

async function tryRegister(port: number, user: string): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    c.send(streamHeader());
    await c.waitFor(/<\/stream:features>/);
    const features = c.received;
    c.send(
      `<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>${user}</username><password>pw</password></query></iq>`,
    );
    return features + (await c.waitFor(/<iq [^>]*id="r1".*?(<\/iq>|\/>)/s))[0];
  } finally {
    c.close();
  }
}

Deno.test("registration is off by default, works when allowed, refuses taken names", async () => {
  let t = await startTestServer(BASE);
  try {
    const off = await tryRegister(t.port, "newbie");
    assert.match(off, /<not-allowed /);
    assert.doesNotMatch(off, /iq-register/);
    assert.equal(await t.server.users("localhost")!.userExists("newbie"), false);
  } finally {
    await t.stop();
  }
  t = await startTestServer({ ...BASE, allow_registration: true });
  try {
    const on = await tryRegister(t.port, "newbie");
    assert.match(on, /<register xmlns="http:\/\/jabber.org\/features\/iq-register"\/>/);
    assert.match(on, /type="result"/);
    const c = await RawClient.connect(t.port);
    try {
      assert.equal(await c.login("newbie", "pw"), "newbie@localhost/test");
    } finally {
      c.close();
    }
    assert.match(await tryRegister(t.port, "newbie"), /<conflict /);
    assert.match(await tryRegister(t.port, "bad user"), /<jid-malformed /);
  } finally {
    await t.stop();
  }
});

Deno.test("a logged-in user can change the password and remove the account", async () => {
  const t = await startTestServer(BASE);
  const c = await RawClient.connect(t.port);
  try {
    const users = t.server.users("localhost")!;
    await users.createUser("juliet", "old");
    await c.login("juliet", "old");
    c.send(
      "<iq type='set' id='p1'><query xmlns='jabber:iq:register'><username>juliet</username><password>new</password></query></iq>",
    );
    await c.waitFor(/<iq [^>]*id="p1"[^>]*type="result"/);
    assert.equal(await users.testPassword("juliet", "new"), true);
    c.send(
      "<iq type='set' id='p2'><query xmlns='jabber:iq:register'><username>romeo</username><password>x</password></query></iq>",
    );
    assert.match((await c.waitFor(/<iq [^>]*id="p2".*?<\/iq>/s))[0], /bad-request/);
    c.send("<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>");
    await c.waitFor(/<iq [^>]*id="rm"[^>]*type="result"/);
    await c.waitFor(/<stream:error><not-authorized /);
    assert.equal(await users.userExists("juliet"), false);
  } finally {
    c.close();
    await t.stop();
  }
});
