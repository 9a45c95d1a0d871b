import assert from "node:assert/strict";
import { connect, createServer } from "node:tls";
import { certificateInfo, generateSelfSigned } from "../../../core/net/certs.ts";
import { pemToDer, tlsServerEndPoint } from "../../../core/sasl/channel_binding.ts";

Deno.test("a generated self-signed certificate is accepted by node:tls and by openssl", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-cert-" });
  try {
    const { certPath, keyPath } = await generateSelfSigned("localhost", dir);
    const cert = await Deno.readTextFile(certPath);
    const key = await Deno.readTextFile(keyPath);
    assert.equal((await Deno.stat(keyPath)).mode! & 0o777, 0o600);

    const info = certificateInfo(cert);
    assert.equal(info.subjectCN, "localhost");
    assert.ok(info.notAfter.getTime() > Date.now() + 2 * 365 * 86_400_000);
    assert.equal((await tlsServerEndPoint(pemToDer(cert))).length, 32);

    const openssl = await new Deno.Command("openssl", {
      args: ["x509", "-in", certPath, "-noout", "-text"],
      stdout: "piped",
    }).output();
    const text = new TextDecoder().decode(openssl.stdout);
    assert.match(text, /Subject: CN ?= ?localhost/);
    assert.match(text, /DNS:localhost, IP Address:127\.0\.0\.1/);
    assert.match(text, /ecdsa-with-SHA256/);

    const server = createServer({ cert, key }, (s) => s.end("pong"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const reply = await new Promise<string>((resolve, reject) => {
      const c = connect({ port, host: "127.0.0.1", rejectUnauthorized: false }, () => {});
      let got = "";
      c.on("data", (d) => got += d);
      c.on("end", () => {
        c.destroy();
        resolve(got);
      });
      c.on("error", reject);
    });
    assert.equal(reply, "pong");
    await new Promise((r) => server.close(r));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
