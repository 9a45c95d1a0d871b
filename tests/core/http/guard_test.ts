/**
 * Hostile HTTP clients against the shared server, on real sockets:
 * slowloris (a request head never finished: 408 and closed, the
 * connection's count freed), too many connections from one address (503),
 * connections left idle (closed), request smuggling shapes and oversize
 * heads (400 from the HTTP parser, nothing reaches a handler), chunked
 * bodies past the limit (413), and the guard's own client address.
 */
import assert from "node:assert/strict";
import { HttpServer } from "../../../core/http/server.ts";
import { getLogger } from "../../../core/log.ts";
import { freePort } from "../../helpers/server.ts";

async function withGuarded(
  fn: (port: number, seen: string[]) => Promise<void>,
  guard: Partial<{ maxPerIp: number; headerTimeout: number; idleTimeout: number }> = {},
) {
  const log = getLogger("test");
  const http = new HttpServer({
    log,
    trustedProxies: [],
    maxBody: 1000,
    guard: {
      maxPerIp: guard.maxPerIp ?? 10,
      maxTotal: 1000,
      headerTimeout: guard.headerTimeout ?? 500,
      idleTimeout: guard.idleTimeout ?? 60_000,
      exempt: [],
      log,
    },
  });
  const seen: string[] = [];
  http.add({
    base: "/a",
    routes: {
      "/": async (r, info) => {
        seen.push(`${r.method} ${info.ip}`);
        return new Response(`got ${(await r.text()).length} from ${info.ip}\n`);
      },
    },
  });
  const port = await freePort();
  await http.listen({ port, hostname: "127.0.0.1" });
  try {
    await fn(port, seen);
  } finally {
    await http.close();
  }
}

/** Writes `text` on a new connection; everything read until the server closes (or `ms`). */
async function raw(
  port: number,
  text: string,
  ms = 3000,
): Promise<{ out: string; closed: boolean }> {
  const c = await Deno.connect({ port, hostname: "127.0.0.1" });
  await c.write(new TextEncoder().encode(text)).catch(() => {});
  let out = "";
  let closed = false;
  const buf = new Uint8Array(65536);
  const timer = setTimeout(() => c.close(), ms);
  try {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) {
        closed = true;
        break;
      }
      out += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch { /* closed by the timer */ }
  clearTimeout(timer);
  try {
    c.close();
  } catch { /* closed */ }
  return { out, closed };
}

Deno.test("http guard: a request head never finished gets 408 and the connection closes", async () => {
  await withGuarded(async (port, seen) => {
    const started = Date.now();
    const r = await raw(port, "GET /a HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n", 5000);
    assert.ok(r.closed, "closed by the server");
    assert.match(r.out, /^HTTP\/1.1 408 /);
    assert.ok(Date.now() - started < 4000);
    assert.deepEqual(seen, []);
    // A normal client is served, keep-alive included, with its own address.
    const ok = await fetch(`http://127.0.0.1:${port}/a`);
    assert.equal(await ok.text(), "got 0 from 127.0.0.1\n");
    const again = await fetch(`http://127.0.0.1:${port}/a`, { method: "POST", body: "hello" });
    assert.equal(await again.text(), "got 5 from 127.0.0.1\n");
  });
});

Deno.test("http guard: over the per-address limit a connection gets 503; freed ones count again", async () => {
  await withGuarded(async (port) => {
    const held: Deno.Conn[] = [];
    for (let i = 0; i < 3; i++) held.push(await Deno.connect({ port, hostname: "127.0.0.1" }));
    await new Promise((r) => setTimeout(r, 100));
    const refused = await raw(port, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(refused.out, /^HTTP\/1.1 503 /);
    assert.ok(refused.closed);
    for (const c of held) c.close();
    await new Promise((r) => setTimeout(r, 200));
    const ok = await raw(port, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert.match(ok.out, /^HTTP\/1.1 200 /);
  }, { maxPerIp: 3, headerTimeout: 10_000 });
});

Deno.test("http guard: an idle connection is closed", async () => {
  await withGuarded(async (port) => {
    const c = await Deno.connect({ port, hostname: "127.0.0.1" });
    await c.write(new TextEncoder().encode("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
    const buf = new Uint8Array(4096);
    const first = await c.read(buf);
    assert.ok(first && first > 0);
    // Then nothing, either way: closed within the idle timeout (and the sweep).
    const started = Date.now();
    const end = await c.read(buf).catch(() => null);
    assert.equal(end, null);
    assert.ok(Date.now() - started < 9000);
    c.close();
  }, { idleTimeout: 1000, headerTimeout: 10_000 });
});

Deno.test("http guard: smuggling shapes and oversize heads get 400; a chunked body past the limit 413", async () => {
  await withGuarded(async (port, seen) => {
    const cases = [
      // Content-Length and Transfer-Encoding both: which one ends the body?
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "0\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n",
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello",
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\nhello",
      "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(200_000) + "\r\n\r\n",
      "GET /a HTTP/1.1\r\nHost: x\r\n" +
      Array.from({ length: 500 }, (_, i) => `X-H${i}: v`).join("\r\n") + "\r\n\r\n",
    ];
    for (const c of cases) {
      const r = await raw(port, c);
      assert.match(r.out, /^HTTP\/1.1 400 /, c.slice(0, 80));
    }
    assert.deepEqual(seen, [], "nothing reached a handler");
    const big = await raw(
      port,
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
        `3e8\r\n${"a".repeat(1000)}\r\n3e8\r\n${"a".repeat(1000)}\r\n0\r\n\r\n`,
    );
    assert.match(big.out, /^HTTP\/1.1 413 /);
  }, { headerTimeout: 10_000 });
});
