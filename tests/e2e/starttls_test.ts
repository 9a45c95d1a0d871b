/**
 * STARTTLS with a client in another process (Python's ssl), many times in a
 * row: the TLS hello right after <proceed/> must never be lost. (An
 * in-process client cannot race the server, so this one runs outside.)
 */
import assert from "node:assert/strict";
import { startTestServer } from "../helpers/server.ts";

const CLIENT = `
import socket, ssl, sys
port, rounds = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
HDR = b"<stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
def until(sock, marker):
    buf = b""
    while marker not in buf:
        chunk = sock.recv(4096)
        if not chunk: raise EOFError("closed")
        buf += chunk
ok = 0
for i in range(rounds):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(3)
    try:
        s.sendall(HDR); until(s, b"</stream:features>")
        s.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); until(s, b"<proceed")
        t = ctx.wrap_socket(s, server_hostname="localhost")
        t.sendall(HDR); until(t, b"SCRAM-SHA-256-PLUS")
        ok += 1
    except Exception as e:
        print("failed:", type(e).__name__, e)
    finally:
        s.close()
print("ok", ok)
`;

Deno.test("STARTTLS from another process succeeds every time", async () => {
  const t = await startTestServer();
  try {
    const r = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", CLIENT, String(t.port), "40"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.match(out, /^ok 40$/m, out);
  } finally {
    await t.stop();
  }
});
