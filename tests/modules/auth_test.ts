import assert from "node:assert/strict";
import { startTestServer } from "../helpers/server.ts";
import { RawClient } from "../helpers/rawclient.ts";
import { ACKNOWLEDGEMENT } from "../../modules/auth_insecure.ts";

Deno.test("internal_hashed keeps no plaintext password at rest", async () => {
  const t = await startTestServer();
  try {
    const users = t.server.users("localhost")!;
    await users.createUser("juliet", "correct horse battery staple");
    assert.equal(await users.testPassword("juliet", "correct horse battery staple"), true);
    assert.equal(await users.testPassword("juliet", "wrong"), false);
    await users.setPassword("juliet", "new secret");
    assert.equal(await users.testPassword("juliet", "new secret"), true);
    t.server.storage.close(); // flush the database to its file
    const bytes = await Deno.readFile(`${t.dataDir}/cadence.sqlite`);
    const text = new TextDecoder("latin1").decode(bytes);
    assert.ok(text.includes("storedKey"), "the account is stored");
    assert.ok(!text.includes("correct horse") && !text.includes("new secret"));
  } finally {
    await t.stop();
  }
});

Deno.test("deleting a user purges their data", async () => {
  const t = await startTestServer();
  try {
    const users = t.server.users("localhost")!;
    await users.createUser("juliet", "pw");
    await t.server.storage.open("localhost", "private", "keyval").set("juliet", { x: 1 });
    await users.deleteUser("juliet");
    assert.equal(await users.userExists("juliet"), false);
    assert.equal(await t.server.storage.open("localhost", "private", "keyval").get("juliet"), null);
    await assert.rejects(() => users.deleteUser("juliet"), /does not exist/);
  } finally {
    await t.stop();
  }
});

Deno.test("insecure auth refuses to load without the acknowledgement", async () => {
  await assert.rejects(
    () => startTestServer({ authentication: "insecure" }),
    /insecure_open_authentication/,
  );
});

Deno.test("insecure auth, acknowledged, accepts any password", async () => {
  const t = await startTestServer({
    authentication: "insecure",
    insecure_open_authentication: ACKNOWLEDGEMENT,
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const c = await RawClient.connect(t.port);
  try {
    assert.equal(await c.login("anyone", "anything"), "anyone@localhost/test");
  } finally {
    c.close();
    await t.stop();
  }
});
