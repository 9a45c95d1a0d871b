/**
 * A real client (npm:@xmpp/client) against a real server: STARTTLS, SCRAM,
 * resource binding, ping and disco.
 */
import assert from "node:assert/strict";
import { client, xml } from "@xmpp/client";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { useScramSha256 } from "../helpers/scram_sha256_client.ts";

// The test server's certificate is self-signed.
Deno.env.set("NODE_TLS_REJECT_UNAUTHORIZED", "0");

// deno-lint-ignore no-explicit-any
type XmppClient = any;

function connectClient(
  t: TestServer,
  username: string,
  password: string,
  mechanism: string,
  setup?: (xmpp: XmppClient) => void,
): Promise<{ xmpp: XmppClient; jid: string; used: string[] }> {
  const used: string[] = [];
  const xmpp = client({
    service: `xmpp://127.0.0.1:${t.port}`,
    domain: "localhost",
    resource: "e2e",
    credentials: async (
      authenticate: (c: unknown, m: string) => Promise<void>,
      mechanisms: string[],
    ) => {
      used.push(...mechanisms);
      await authenticate({ username, password }, mechanism);
    },
  });
  xmpp.reconnect.stop();
  setup?.(xmpp);
  return new Promise((resolve, reject) => {
    xmpp.on("error", reject);
    xmpp.on("online", (address: { toString(): string }) => {
      resolve({ xmpp, jid: address.toString(), used });
    });
    xmpp.start().catch(reject);
  });
}

async function withServer(fn: (t: TestServer) => Promise<void>, options = {}) {
  const t = await startTestServer(options);
  try {
    await t.server.users("localhost")!.createUser("romeo", "wherefore art thou");
    await fn(t);
  } finally {
    await t.stop();
  }
}

/**
 * Both ways of logging in: SASL2 with Bind2 (XEP-0388/0386, which @xmpp/client
 * prefers; the server picks the resource: the client's tag and a suffix) and
 * RFC 6120 SASL with resource binding (SASL2 turned off; the resource asked for).
 */
const PROTOCOLS = [
  { name: "SASL2 + Bind2", options: {}, resource: /^e2e\.[A-Za-z0-9_-]{8}$/ },
  { name: "RFC 6120 SASL", options: { sasl2: false }, resource: /^e2e$/ },
];

for (const protocol of PROTOCOLS) {
  Deno.test(`@xmpp/client logs in over STARTTLS with SCRAM-SHA-1 (${protocol.name}), binds, pings, discos`, async () => {
    await withServer(async (t) => {
      const { xmpp, jid, used } = await connectClient(
        t,
        "romeo",
        "wherefore art thou",
        "SCRAM-SHA-1",
      );
      try {
        const [bareJid, resource] = jid.split("/");
        assert.equal(bareJid, "romeo@localhost");
        assert.match(resource, protocol.resource);
        assert.ok(used.includes("SCRAM-SHA-1"));
        const session = t.server.sessions.full.get(jid);
        assert.ok(session?.secure, "the session is encrypted");

        const pong = await xmpp.iqCaller.request(
          xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
        );
        assert.equal(pong.attrs.type, "result");

        const info = await xmpp.iqCaller.request(
          xml(
            "iq",
            { type: "get", to: "localhost" },
            xml("query", {
              xmlns: "http://jabber.org/protocol/disco#info",
            }),
          ),
        );
        const query = info.getChild("query");
        const features = query.getChildren("feature").map((f: XmppClient) => f.attrs.var);
        for (
          const f of [
            "urn:xmpp:ping",
            "jabber:iq:version",
            "urn:xmpp:time",
            "jabber:iq:last",
            "http://jabber.org/protocol/disco#info",
          ]
        ) assert.ok(features.includes(f), `disco#info lists ${f}`);
        const identity = query.getChild("identity");
        assert.equal(identity.attrs.category, "server");
        assert.equal(identity.attrs.type, "im");

        const version = await xmpp.iqCaller.request(
          xml("iq", { type: "get", to: "localhost" }, xml("query", { xmlns: "jabber:iq:version" })),
        );
        assert.equal(version.getChild("query").getChildText("name"), "Cadence");

        const time = await xmpp.iqCaller.request(
          xml("iq", { type: "get", to: "localhost" }, xml("time", { xmlns: "urn:xmpp:time" })),
        );
        assert.match(time.getChild("time").getChildText("utc"), /^\d{4}-\d\d-\d\dT/);

        const uptime = await xmpp.iqCaller.request(
          xml("iq", { type: "get", to: "localhost" }, xml("query", { xmlns: "jabber:iq:last" })),
        );
        assert.ok(Number(uptime.getChild("query").attrs.seconds) >= 0);

        const items = await xmpp.iqCaller.request(
          xml(
            "iq",
            { type: "get", to: "localhost" },
            xml("query", {
              xmlns: "http://jabber.org/protocol/disco#items",
            }),
          ),
        );
        assert.equal(items.attrs.type, "result");
      } finally {
        await xmpp.stop();
      }
    }, protocol.options);
  });
}

Deno.test("@xmpp/client logs in over STARTTLS with SCRAM-SHA-256", async () => {
  await withServer(async (t) => {
    const { xmpp, jid, used } = await connectClient(
      t,
      "romeo",
      "wherefore art thou",
      "SCRAM-SHA-256",
      useScramSha256,
    );
    try {
      assert.match(jid, /^romeo@localhost\/e2e\.[A-Za-z0-9_-]{8}$/); // (SASL2 + Bind2)
      assert.ok(used.includes("SCRAM-SHA-256"));
      assert.ok(t.server.sessions.full.get(jid)?.secure);
      const pong = await xmpp.iqCaller.request(
        xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
      );
      assert.equal(pong.attrs.type, "result");
    } finally {
      await xmpp.stop();
    }
  });
});

Deno.test("@xmpp/client is refused with a wrong password", async () => {
  await withServer(async (t) => {
    await assert.rejects(
      () => connectClient(t, "romeo", "wrong", "SCRAM-SHA-1").then(({ xmpp }) => xmpp.stop()),
      /not-authorized/,
    );
    assert.equal(t.server.sessions.full.size, 0);
  });
});
