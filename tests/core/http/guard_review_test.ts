/**
 * Review of the HTTP connection guard: request heads with bare line feeds,
 * IPv6 clients counted by their /64 (as c2s counts them), and a connection
 * dropped (server closing) while its backend connection was being opened.
 */
import assert from "node:assert/strict";
import { ConnectionGuard } from "../../../core/http/guard.ts";
import { HttpServer } from "../../../core/http/server.ts";
import { getLogger } from "../../../core/log.ts";

const log = getLogger("test");
const options = (o: Partial<{ maxPerIp: number; headerTimeout: number }> = {}) => ({
  maxPerIp: o.maxPerIp ?? 10,
  maxTotal: 1000,
  headerTimeout: o.headerTimeout ?? 500,
  idleTimeout: 60_000,
  exempt: [],
  log,
});

/** A client connection that never sends anything, from `hostname`. */
function fakeClient(hostname: string) {
  let closed = false;
  let wake: (() => void) | undefined;
  const written: string[] = [];
  const conn = {
    remoteAddr: { transport: "tcp", hostname, port: 40000 },
    localAddr: { transport: "tcp", hostname: "127.0.0.1", port: 5280 },
    read(_b: Uint8Array): Promise<number | null> {
      if (closed) return Promise.reject(new Deno.errors.BadResource("closed"));
      return new Promise((_, reject) => {
        wake = () => reject(new Deno.errors.BadResource("closed"));
      });
    },
    write(b: Uint8Array): Promise<number> {
      written.push(new TextDecoder().decode(b));
      return Promise.resolve(b.length);
    },
    closeWrite: () => Promise.resolve(),
    close() {
      closed = true;
      wake?.();
    },
    get closed() {
      return closed;
    },
    written,
  };
  return conn;
}

type Serve = {
  serve(c: unknown, backend: Deno.NetAddr, plaintext: boolean): Promise<void>;
};

Deno.test("http guard review: a request head ended by bare line feeds is not cut off with 408", async () => {
  const http = new HttpServer({
    log,
    trustedProxies: [],
    maxBody: 1000,
    guard: options({ headerTimeout: 300 }),
  });
  http.add({
    base: "/a",
    routes: {
      "/": async () => {
        await new Promise((ok) => setTimeout(ok, 800));
        return new Response("slow ok\n");
      },
    },
  });
  const addr = await http.listen({ port: 0, hostname: "127.0.0.1" });
  try {
    const c = await Deno.connect({ port: addr.port, hostname: "127.0.0.1" });
    // The HTTP parser takes LF as a line end (RFC 9112 §2.2): this head is whole.
    await c.write(new TextEncoder().encode("GET /a HTTP/1.1\nHost: x\nConnection: close\n\n"));
    let out = "";
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await c.read(buf).catch(() => null);
      if (n === null) break;
      out += new TextDecoder().decode(buf.subarray(0, n));
    }
    c.close();
    assert.match(out, /^HTTP\/1.1 200 /);
    assert.match(out, /slow ok/);
  } finally {
    await http.close();
  }
});

Deno.test("http guard review: IPv6 clients are counted by their /64, as c2s counts them", async () => {
  const backend = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  (async () => {
    for await (const c of backend) accepted.push(c);
  })();
  const guard = new ConnectionGuard(options({ maxPerIp: 2, headerTimeout: 10_000 }));
  const g = guard as unknown as Serve;
  const clients = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"].map(fakeClient);
  const served = clients.map((c) => g.serve(c, backend.addr as Deno.NetAddr, true));
  await new Promise((r) => setTimeout(r, 200));
  try {
    assert.ok(!clients[0].closed && !clients[1].closed, "two are let in");
    assert.ok(clients[2].closed, "a third from the same /64 is refused");
    assert.match(clients[2].written.join(""), /^HTTP\/1.1 503 /);
  } finally {
    guard.close();
    await Promise.all(served);
    for (const c of accepted) c.close();
    backend.close();
  }
});

Deno.test("http guard review: closing while a backend connection is being opened leaves it closed", async () => {
  const backend = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = backend.accept();
  const guard = new ConnectionGuard(options({ headerTimeout: 10_000 }));
  const client = fakeClient("192.0.2.1");
  const served = (guard as unknown as Serve).serve(client, backend.addr as Deno.NetAddr, true);
  guard.close(); // before Deno.connect has resolved
  const conn = await accepted;
  // The backend does not close its side first: the guard must close its connection itself.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ended = await Promise.race([
    served.then(() => true),
    new Promise<boolean>((r) => timer = setTimeout(() => r(false), 1000)),
  ]);
  clearTimeout(timer);
  conn.close();
  await served;
  backend.close();
  assert.ok(ended, "the guard's backend connection was left open");
});
