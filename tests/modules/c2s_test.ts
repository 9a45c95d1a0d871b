import assert from "node:assert/strict";
import { connect } from "node:tls";
import { startTestServer } from "../helpers/server.ts";

Deno.test("direct TLS presents the certificate of the host named by SNI", async () => {
  const t = await startTestServer({ virtual_hosts: { localhost: {}, "b.example": {} } });
  try {
    for (const name of ["b.example", "localhost"]) {
      const cn = await new Promise<string | undefined>((resolve, reject) => {
        const c = connect(
          { port: t.tlsPort, host: "127.0.0.1", servername: name, rejectUnauthorized: false },
          () => {
            const cn = (c.getPeerCertificate() as { subject?: { CN?: string } }).subject?.CN;
            c.destroy();
            resolve(cn);
          },
        );
        c.on("error", reject);
      });
      assert.equal(cn, name);
    }
  } finally {
    await t.stop();
  }
});

Deno.test("elements sent before a stream restart are not taken as part of the new stream", async () => {
  const { RawClient, streamHeader } = await import("../helpers/rawclient.ts");
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
  });
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    const c = await RawClient.connect(t.port);
    c.send(streamHeader());
    await c.waitFor(/<\/stream:features>/);
    // A ping pipelined behind <auth/> belongs to the old stream (RFC 6120 §6.4.6).
    c.send(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
        btoa("\0juliet\0pw")
      }</auth>` +
        "<iq type='get' id='early' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    await c.waitFor(/<success/);
    c.send(streamHeader());
    await c.waitFor(/<bind /);
    c.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await c.waitFor(/<\/jid>/);
    assert.doesNotMatch(c.received, /id="early"|<stream:error/);
    c.close();
  } finally {
    await t.stop();
  }
});
