/**
 * HTTPS with a certificate per host: two VirtualHosts, each with its own
 * (self-signed, generated) certificate; a client asking for either name
 * (SNI) gets that host's certificate and its request served; a client
 * naming no host, or an unknown one, gets the first host's. The ClientHello
 * parser is checked on its own too (`core/http/sni.ts`).
 */
import assert from "node:assert/strict";
import { connect, type TLSSocket } from "node:tls";
import { startTestServer } from "../helpers/server.ts";
import { freePort } from "../helpers/server.ts";
import { clientHelloName } from "../../core/http/sni.ts";

/** A TLS connection to the port asking for `servername`; the certificate's names and a GET's status line. */
function get(port: number, servername?: string): Promise<{ names: string; status: string }> {
  return new Promise((resolve, reject) => {
    const s: TLSSocket = connect({
      host: "127.0.0.1",
      port,
      servername,
      rejectUnauthorized: false,
      ALPNProtocols: ["http/1.1"],
    }, () => {
      const cert = s.getPeerCertificate();
      const names = `${cert.subject?.CN ?? ""} ${cert.subjectaltname ?? ""}`;
      s.write(
        `GET /.well-known/host-meta.json HTTP/1.1\r\nHost: ${servername ?? "x"}\r\n` +
          "Connection: close\r\n\r\n",
      );
      let out = "";
      s.on("data", (d) => out += d);
      s.on("end", () => resolve({ names, status: out.split("\r\n")[0] }));
    });
    s.on("error", reject);
  });
}

Deno.test("https: each host's certificate by SNI, the first host's otherwise", async () => {
  const httpsPort = await freePort();
  const t = await startTestServer({
    virtual_hosts: { "one.localhost": {}, "two.localhost": {} },
    https_ports: [httpsPort],
  } as never);
  try {
    const one = await get(httpsPort, "one.localhost");
    assert.match(one.names, /one\.localhost/);
    assert.doesNotMatch(one.names, /two\.localhost/);
    assert.equal(one.status, "HTTP/1.1 200 OK");
    const two = await get(httpsPort, "two.localhost");
    assert.match(two.names, /two\.localhost/);
    assert.doesNotMatch(two.names, /one\.localhost/);
    assert.equal(two.status, "HTTP/1.1 200 OK");
    const other = await get(httpsPort, "elsewhere.example");
    assert.match(other.names, /one\.localhost/, "unknown name: the first host's");
    const none = await get(httpsPort);
    assert.match(none.names, /one\.localhost/, "no name: the first host's");
  } finally {
    await t.stop();
  }
});

Deno.test("sni: the name from a real ClientHello, byte by byte; none, not TLS, incomplete", async () => {
  // Capture what node:tls sends as its ClientHello.
  const hello = await new Promise<Uint8Array>((resolve, reject) => {
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      const c = await server.accept();
      const buf = new Uint8Array(20000);
      const n = await c.read(buf);
      c.close();
      server.close();
      resolve(buf.slice(0, n ?? 0));
    })().catch(reject);
    const s = connect({
      host: "127.0.0.1",
      port: (server.addr as Deno.NetAddr).port,
      servername: "Chat.Example.COM",
      rejectUnauthorized: false,
    });
    s.on("error", () => {});
  });
  assert.equal(clientHelloName(hello), "chat.example.com");
  for (let cut = 0; cut < hello.length; cut += 97) {
    assert.equal(clientHelloName(hello.subarray(0, cut)), null, `incomplete at ${cut}`);
  }
  assert.equal(clientHelloName(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")), undefined);
  // A hello whose extensions were cut off claims nothing.
  const broken = hello.slice();
  broken[broken.length - 1] ^= 0xff;
  clientHelloName(broken); // (must not throw)
});
