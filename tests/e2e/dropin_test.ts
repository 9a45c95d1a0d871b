/**
 * A drop-in module: a .ts file in a `plugin_paths` directory, named in
 * `modules_enabled`, loads and answers with nothing else to register.
 * The module below is the README's example, verbatim.
 */
import assert from "node:assert/strict";
import { RawClient } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

const HELLO_MODULE = `
export default (module) => {
  module.addFeature("urn:example:hello");
  module.hook("iq-get/host/urn:example:hello:hello", ({ origin, stanza }) => {
    origin.send(
      stanza.reply().tag("hello", { xmlns: "urn:example:hello" })
        .text("Hello, " + origin.username + "!"),
    );
    return true; // handled
  });
};
`;

Deno.test("a module dropped into plugin_paths loads and answers its iq", async () => {
  const plugins = await Deno.makeTempDir({ prefix: "cadence-plugins-" });
  await Deno.writeTextFile(`${plugins}/hello.ts`, HELLO_MODULE);
  const t = await startTestServer({
    plugin_paths: [plugins],
    modules_enabled: ["hello", "disco", "saslauth", "tls"],
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  const c = await RawClient.connect(t.port);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    await c.login("juliet", "pw");
    c.send("<iq type='get' id='h1' to='localhost'><hello xmlns='urn:example:hello'/></iq>");
    const reply = (await c.waitFor(/<iq [^>]*id="h1".*?<\/iq>/s))[0];
    assert.match(reply, /type="result"/);
    assert.match(reply, /<hello xmlns="urn:example:hello">Hello, juliet!<\/hello>/);

    c.send(
      "<iq type='get' id='d1' to='localhost'>" +
        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    const info = (await c.waitFor(/<iq [^>]*id="d1".*?<\/iq>/s))[0];
    assert.match(info, /<feature var="urn:example:hello"\/>/);

    // Unloading removes its hook and its feature.
    await t.server.modules.unload("localhost", "hello");
    c.clear();
    c.send("<iq type='get' id='h2' to='localhost'><hello xmlns='urn:example:hello'/></iq>");
    assert.match((await c.waitFor(/<iq [^>]*id="h2".*?<\/iq>/s))[0], /service-unavailable/);
    c.send(
      "<iq type='get' id='d2' to='localhost'>" +
        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    assert.doesNotMatch((await c.waitFor(/<iq [^>]*id="d2".*?<\/iq>/s))[0], /urn:example:hello/);
  } finally {
    c.close();
    await t.stop();
    await Deno.remove(plugins, { recursive: true });
  }
});

Deno.test("an unknown module named in modules_enabled stops start-up with a clear error", async () => {
  await assert.rejects(
    () => startTestServer({ modules_enabled: ["no_such_module"] }),
    /no_such_module/,
  );
});
