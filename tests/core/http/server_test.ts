/**
 * The shared HTTP server on a real port: routes under base paths (longest
 * first), 404/405/413/500, the client's address through trusted proxies
 * only, CORS preflight and headers.
 */
import assert from "node:assert/strict";
import { HttpServer } from "../../../core/http/server.ts";
import { getLogger } from "../../../core/log.ts";
import { freePort } from "../../helpers/server.ts";

async function withHttp(
  fn: (url: string, http: HttpServer) => Promise<void>,
  trustedProxies: string[] = [],
) {
  const http = new HttpServer({
    log: getLogger("test"),
    trustedProxies,
    maxBody: 1000,
    externalUrl: undefined,
  });
  const port = await freePort();
  await http.listen({ port, hostname: "127.0.0.1" });
  try {
    await fn(`http://127.0.0.1:${port}`, http);
  } finally {
    await http.close();
  }
}

const echo =
  (label: string) => (req: Request, info: { ip: string; path: string; secure: boolean }) =>
    Response.json({ label, method: req.method, path: info.path, ip: info.ip, secure: info.secure });

Deno.test("http: routes under base paths, the longest first; 404, 405, 413, 500", async () => {
  await withHttp(async (url, http) => {
    http.add({ base: "/a", routes: { "GET /": echo("a"), "POST /x": echo("a-x") } });
    http.add({ base: "/a/b", routes: { "/": echo("ab") } });
    http.add({
      base: "/boom",
      routes: {
        "GET /": () => {
          throw new Error("bug");
        },
      },
    });
    assert.throws(() => http.add({ base: "/a/", routes: {} }), /served already/);
    const get = async (path: string, init?: RequestInit) => {
      const r = await fetch(url + path, init);
      return { status: r.status, body: await r.text() };
    };
    assert.deepEqual(JSON.parse((await get("/a")).body), {
      label: "a",
      method: "GET",
      path: "/",
      ip: "127.0.0.1",
      secure: false,
    });
    assert.equal(JSON.parse((await get("/a/x", { method: "POST", body: "hi" })).body).label, "a-x");
    assert.equal(JSON.parse((await get("/a/b")).body).label, "ab");
    assert.equal(JSON.parse((await get("/a/b", { method: "PUT", body: "" })).body).label, "ab");
    assert.equal((await get("/nothing")).status, 404);
    assert.equal((await get("/a/y")).status, 404);
    assert.equal((await get("/a/x")).status, 405); // (only POST there)
    assert.equal((await get("/a/x", { method: "POST", body: "x".repeat(2000) })).status, 413);
    assert.equal((await get("/boom")).status, 500);
    http.remove("/a/b");
    assert.equal((await get("/a/b")).status, 404); // (now under /a, which has no /b)
  });
});

Deno.test("http: X-Forwarded-For and -Proto are believed from trusted proxies only", async () => {
  const headers = { "x-forwarded-for": "203.0.113.9, 127.0.0.1", "x-forwarded-proto": "https" };
  await withHttp(async (url, http) => {
    http.add({ base: "/", routes: { "GET /who": echo("who") } });
    const r = await (await fetch(url + "/who", { headers })).json();
    assert.equal(r.ip, "203.0.113.9");
    assert.equal(r.secure, true);
  }, ["127.0.0.1"]);
  await withHttp(async (url, http) => {
    http.add({ base: "/", routes: { "GET /who": echo("who") } });
    const r = await (await fetch(url + "/who", { headers })).json();
    assert.equal(r.ip, "127.0.0.1");
    assert.equal(r.secure, false);
  });
});

Deno.test("http: CORS preflight and headers when a route set asks for them", async () => {
  await withHttp(async (url, http) => {
    http.add({ base: "/open", routes: { "POST /": echo("open") }, cors: { enabled: true } });
    http.add({ base: "/closed", routes: { "POST /": echo("closed") } });
    const pre = await fetch(url + "/open", {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST" },
    });
    await pre.body?.cancel();
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "*");
    assert.match(pre.headers.get("access-control-allow-methods") ?? "", /POST/);
    const open = await fetch(url + "/open", {
      method: "POST",
      body: "",
      headers: { origin: "https://app.example" },
    });
    await open.body?.cancel();
    assert.equal(open.headers.get("access-control-allow-origin"), "*");
    const closed = await fetch(url + "/closed", {
      method: "POST",
      body: "",
      headers: { origin: "https://app.example" },
    });
    await closed.body?.cancel();
    assert.equal(closed.headers.get("access-control-allow-origin"), null);
  });
});

Deno.test("http: a wildcard route serves every path below its base; other methods get 405", async () => {
  await withHttp(async (url, http) => {
    http.add({ base: "/files", routes: { "GET /": echo("root"), "GET /*": echo("any") } });
    const r = await fetch(`${url}/files/abc/name.txt`);
    assert.deepEqual(await r.json(), {
      label: "any",
      method: "GET",
      path: "/abc/name.txt",
      ip: "127.0.0.1",
      secure: false,
    });
    assert.equal((await (await fetch(`${url}/files`)).json()).label, "root", "exact first");
    const head = await fetch(`${url}/files/x`, { method: "HEAD" });
    assert.equal(head.status, 200, "HEAD is served by GET");
    const del = await fetch(`${url}/files/x`, { method: "DELETE" });
    assert.equal(del.status, 405);
    await del.body?.cancel();
  });
});
