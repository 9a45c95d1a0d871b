/**
 * SCRAM-PLUS end to end: the channel binding (tls-server-end-point) is the
 * hash of the certificate the connection was actually given — the SNI host's
 * on direct TLS, whatever host the stream then names — and an unknown
 * user's made-up salt stays the same across restarts.
 */
import assert from "node:assert/strict";
import { connect, type TLSSocket } from "node:tls";
import { ScramClient } from "../../core/sasl/scram.ts";
import { tlsServerEndPoint } from "../../core/sasl/channel_binding.ts";
import { streamHeader } from "../helpers/rawclient.ts";
import { startTestServer } from "../helpers/server.ts";

const SASL = "urn:ietf:params:xml:ns:xmpp-sasl";

/** Connects with direct TLS, optionally naming a host by SNI; returns the socket and a reader. */
function directTls(port: number, servername?: string) {
  return new Promise<{ socket: TLSSocket; read: (re: RegExp) => Promise<RegExpMatchArray> }>(
    (resolve, reject) => {
      const socket = connect(
        {
          port,
          host: "127.0.0.1",
          rejectUnauthorized: false,
          ...(servername ? { servername } : {}),
        },
        () => resolve({ socket, read }),
      );
      socket.on("error", reject);
      let received = "";
      const waiters: Array<() => void> = [];
      socket.on("data", (d: Uint8Array) => {
        received += new TextDecoder().decode(d);
        for (const w of waiters.splice(0)) w();
      });
      async function read(re: RegExp) {
        const deadline = Date.now() + 5000;
        for (;;) {
          const m = received.match(re);
          if (m) {
            received = received.slice(m.index! + m[0].length);
            return m;
          }
          if (Date.now() > deadline) throw new Error(`no ${re} in ${received}`);
          await new Promise<void>((r) => {
            waiters.push(r);
            setTimeout(r, 100);
          });
        }
      }
    },
  );
}

/** A SCRAM-SHA-256-PLUS login on a direct TLS connection; the server's answer. */
async function plusLogin(port: number, servername: string | undefined, to: string) {
  const { socket, read } = await directTls(port, servername);
  try {
    const cert = socket.getPeerCertificate().raw;
    const client = new ScramClient("SHA-256", "juliet", "pw", {
      binding: await tlsServerEndPoint(new Uint8Array(cert)),
    });
    socket.write(streamHeader(to));
    await read(/SCRAM-SHA-256-PLUS/);
    socket.write(
      `<auth xmlns='${SASL}' mechanism='SCRAM-SHA-256-PLUS'>${btoa(client.first())}</auth>`,
    );
    const challenge = (await read(/<challenge [^>]*>([^<]*)<\/challenge>/))[1];
    socket.write(
      `<response xmlns='${SASL}'>${btoa(await client.final(atob(challenge)))}</response>`,
    );
    return (await read(/<(success|failure)[^>]*>/))[1];
  } finally {
    socket.destroy();
  }
}

Deno.test("SCRAM-PLUS binds to the certificate presented: SNI host, other stream host, no SNI", async () => {
  const t = await startTestServer({ virtual_hosts: { localhost: {}, "b.example": {} } });
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    assert.equal(await plusLogin(t.tlsPort, "localhost", "localhost"), "success");
    // The certificate of b.example (named by SNI), the stream for localhost.
    assert.equal(await plusLogin(t.tlsPort, "b.example", "localhost"), "success");
    // No SNI: the first host's certificate.
    assert.equal(await plusLogin(t.tlsPort, undefined, "localhost"), "success");
  } finally {
    await t.stop();
  }
});

Deno.test("an unknown user's SCRAM salt is the same after a restart, as a real user's is", async () => {
  const salt = async (port: number, user: string) => {
    const { socket, read } = await directTls(port, "localhost");
    try {
      const client = new ScramClient("SHA-1", user, "x");
      socket.write(streamHeader());
      await read(/<\/stream:features>/);
      socket.write(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${btoa(client.first())}</auth>`);
      const challenge = atob((await read(/<challenge [^>]*>([^<]*)<\/challenge>/))[1]);
      return /s=([^,]+)/.exec(challenge)![1];
    } finally {
      socket.destroy();
    }
  };
  let t = await startTestServer();
  await t.server.users("localhost")!.createUser("juliet", "pw");
  const before = [await salt(t.tlsPort, "juliet"), await salt(t.tlsPort, "nobody")];
  await t.stop({ keepData: true });
  t = await startTestServer({}, t.dataDir);
  try {
    const after = [await salt(t.tlsPort, "juliet"), await salt(t.tlsPort, "nobody")];
    assert.deepEqual(after, before);
  } finally {
    await t.stop();
  }
});
