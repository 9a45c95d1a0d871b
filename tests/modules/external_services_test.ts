/**
 * External Service Discovery (XEP-0215) and turn_external: the services a
 * client is told of, with TURN credentials made from the shared secret
 * (checked against the TURN REST formula here, and against a real coturn
 * in `tests/e2e/turn_coturn_test.ts`), `restricted` services and the
 * `credentials` request, the type filter, and the refusals.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { connectXmpp, type TestXmpp, xml } from "../helpers/xmppclient.ts";

const NS = "urn:xmpp:extdisco:2";

async function withClient(
  options: Record<string, unknown>,
  fn: (c: TestXmpp, t: TestServer) => Promise<void>,
) {
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
    ...options,
  } as never);
  const c = await (async () => {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    return await connectXmpp(t.port, "juliet", "pw");
  })();
  try {
    await fn(c, t);
  } finally {
    await c.stop();
    await t.stop();
  }
}

async function iq(c: TestXmpp, payload: ReturnType<typeof xml>, id: string) {
  await c.send(xml("iq", { type: "get", id, to: "localhost" }, payload));
  return await c.waitFor((s) => s.is("iq") && s.attrs.id === id);
}

type El = { attrs: Record<string, string>; getChildren(n: string): El[] };

Deno.test("external_services: STUN and TURN with credentials from the secret, as TURN REST has them", async () => {
  await withClient({
    modules_enabled: ["roster", "saslauth", "tls", "disco", "turn_external"],
    turn_external_host: "turn.localhost",
    turn_external_secret: "s3cret",
    turn_external_ttl: 600,
    turn_external_tcp: true,
    turn_external_tls_port: 5349,
  }, async (c) => {
    const before = Math.floor(Date.now() / 1000);
    const r = await iq(c, xml("services", { xmlns: NS }), "s1");
    assert.equal(r.attrs.type, "result");
    const services = (r.getChild("services", NS) as El).getChildren("service");
    assert.deepEqual(
      services.map((s) => [s.attrs.type, s.attrs.transport, s.attrs.host, s.attrs.port]),
      [
        ["stun", "udp", "turn.localhost", "3478"],
        ["turn", "udp", "turn.localhost", "3478"],
        ["turn", "tcp", "turn.localhost", "3478"],
        ["turns", "tcp", "turn.localhost", "5349"],
      ],
    );
    assert.equal(services[0].attrs.username, undefined, "STUN needs no credentials");
    const turn = services[1].attrs;
    const expires = Number(turn.username);
    assert.ok(expires >= before + 600 && expires <= before + 602, `expiry ${turn.username}`);
    assert.equal(
      turn.password,
      createHmac("sha1", "s3cret").update(turn.username).digest("base64"),
    );
    assert.equal(new Date(turn.expires).getTime(), expires * 1000);

    // Only TURN, please.
    const only = await iq(c, xml("services", { xmlns: NS, type: "turn" }), "s2");
    const types = (only.getChild("services", NS) as El).getChildren("service").map((s) =>
      s.attrs.type
    );
    assert.deepEqual(types, ["turn", "turn"]);

    // disco#info says the host does it.
    const info = await iq(
      c,
      xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }),
      "d1",
    );
    assert.ok(
      (info.getChild("query") as El).getChildren("feature").some((f) => f.attrs.var === NS),
    );
  });
});

Deno.test("external_services: restricted services and the credentials request; an unknown service is item-not-found", async () => {
  await withClient({
    modules_enabled: ["roster", "saslauth", "tls", "disco", "external_services"],
    external_services: [
      { type: "stun", host: "stun.localhost", port: 3478, transport: "udp" },
      {
        type: "turn",
        host: "turn.localhost",
        port: 3478,
        transport: "udp",
        username: "fixed",
        password: "pass",
        restricted: true,
      },
    ],
  }, async (c) => {
    const r = await iq(c, xml("services", { xmlns: NS }), "s1");
    const turn = (r.getChild("services", NS) as El).getChildren("service")[1].attrs;
    assert.equal(turn.restricted, "1");
    assert.equal(turn.username, undefined, "restricted: no credentials until asked");
    const cr = await iq(
      c,
      xml("credentials", { xmlns: NS }, xml("service", { type: "turn", host: "turn.localhost" })),
      "c1",
    );
    const got = (cr.getChild("credentials", NS) as El).getChildren("service")[0].attrs;
    assert.deepEqual([got.username, got.password], ["fixed", "pass"]);
    const none = await iq(
      c,
      xml("credentials", { xmlns: NS }, xml("service", { type: "turn", host: "other.example" })),
      "c2",
    );
    assert.equal(none.attrs.type, "error");
    assert.ok(none.getChild("error").getChild("item-not-found"));
  });
});
