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
