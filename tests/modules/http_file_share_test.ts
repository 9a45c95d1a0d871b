/**
 * HTTP File Upload (XEP-0363, mod_http_file_share) on a real server with
 * npm:@xmpp/client and fetch: disco, a slot, the PUT and the GET back
 * (headers, ranges, HEAD, CORS), and every refusal on the wire — too large,
 * bad filenames, a type not allowed, a requester of another server, the
 * daily and global quotas, forged, missing and expired tokens, wrong
 * sizes and types, a used slot, a cut-short upload — then the expiry sweep
 * and a 20 MB upload streamed through a raised limit.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { createHash } from "node:crypto";
import { component, xml } from "@xmpp/component";
import { freePort, startTestServer, type TestServer } from "../helpers/server.ts";
import { connectXmpp, type TestXmpp, type XmlElement } from "../helpers/xmppclient.ts";
import { errorOf } from "../helpers/muc.ts";
import { escapeAttr } from "../../core/xml/stanza.ts";

const UPLOAD = "upload.localhost";
const NS = "urn:xmpp:http:upload:0";
let seq = 0;

type Login = (u: string) => Promise<TestXmpp>;

/** A server with the upload component (these options on it), http on a port known beforehand. */
async function withShare(
  fn: (login: Login, t: TestServer) => Promise<void>,
  componentOptions: Record<string, unknown> = {},
  options: Record<string, unknown> = {},
) {
  const httpPort = await freePort();
  const t = await startTestServer({
    http_ports: [httpPort],
    http_external_url: `http://127.0.0.1:${httpPort}`,
    components: { [UPLOAD]: { module: "http_file_share", ...componentOptions } },
    ...options,
  });
  const clients: TestXmpp[] = [];
  try {
    for (const u of ["alice", "bob"]) await t.server.users("localhost")!.createUser(u, "pw");
    await fn(async (u) => {
      const c = await connectXmpp(t.port, u, "pw", "r");
      clients.push(c);
      return c;
    }, t);
  } finally {
    for (const c of clients) await c.stop();
    await t.stop();
  }
}

/** Asks for a slot; returns the iq that answers. */
async function request(
  c: TestXmpp,
  attrs: Record<string, string | number>,
): Promise<XmlElement> {
  const id = `up${++seq}`;
  const a = Object.entries(attrs).map(([k, v]) => ` ${k}='${escapeAttr(String(v))}'`).join("");
  c.xmpp.write(`<iq type='get' id='${id}' to='${UPLOAD}'><request xmlns='${NS}'${a}/></iq>`);
  return await c.waitFor((s) => s.is("iq") && s.attrs.id === id);
}

/** The slot's URLs and Authorization header. */
function slotOf(reply: XmlElement) {
  assert.equal(reply.attrs.type, "result", reply.toString());
  const slot = reply.getChild("slot", NS);
  const put = slot.getChild("put");
  const header = put.getChild("header");
  assert.equal(header.attrs.name, "Authorization");
  return {
    put: put.attrs.url as string,
    get: slot.getChild("get").attrs.url as string,
    auth: header.text() as string,
  };
}

async function slotFor(
  c: TestXmpp,
  filename: string,
  body: Uint8Array,
  type = "text/plain",
) {
  return slotOf(await request(c, { filename, size: body.byteLength, "content-type": type }));
}

function put(
  url: string,
  body: Uint8Array<ArrayBuffer>,
  headers: Record<string, string>,
): Promise<Response> {
  return fetch(url, { method: "PUT", body, headers });
}

/** Status and text of a response (its body read, so nothing leaks). */
async function statusOf(r: Response | Promise<Response>): Promise<[number, string]> {
  const res = await r;
  return [res.status, (await res.text()).trim()];
}

const bytes = (s: string) => new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `check` holds (polling), or fails. */
async function until(check: () => Promise<boolean>, ms = 8000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(50);
  }
}

Deno.test("http_file_share: disco; a slot; PUT, then GET byte-equal with its headers, ranges, HEAD and CORS; a slot is used once", async () => {
  await withShare(async (login, t) => {
    const alice = await login("alice");
    alice.xmpp.write(
      `<iq type='get' id='d1' to='${UPLOAD}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
    );
    const info = (await alice.waitFor((s) => s.attrs.id === "d1")).getChild("query");
    const identity = info.getChild("identity");
    assert.equal(`${identity.attrs.category}/${identity.attrs.type}`, "store/file");
    assert.ok(info.getChildren("feature").some((f: XmlElement) => f.attrs.var === NS));
    const fields = info.getChild("x", "jabber:x:data").getChildren("field");
    const field = (v: string) => fields.find((f: XmlElement) => f.attrs.var === v);
    assert.equal(field("FORM_TYPE").getChildText("value"), NS);
    assert.equal(field("max-file-size").getChildText("value"), String(10 << 20));

    const content = bytes("Hello, world! — a file.\n");
    const name = "hello wörld.txt";
    const slot = await slotFor(alice, name, content);
    assert.equal(slot.put, slot.get);
    // http_external_url + the provider's path + /<slot id>/<filename, percent-encoded>.
    assert.match(
      slot.get,
      /^http:\/\/127\.0\.0\.1:\d+\/file_share\/[0-9a-f-]{36}\/hello%20w%C3%B6rld\.txt$/,
    );
    assert.match(slot.auth, /^Bearer \S+$/);
    const id = new URL(slot.get).pathname.split("/")[2];

    // Nothing to GET before the upload.
    assert.equal((await statusOf(fetch(slot.get)))[0], 404);
    assert.deepEqual(
      await statusOf(put(slot.put, content, {
        authorization: slot.auth,
        "content-type": "text/plain",
      })),
      [201, "Created"],
    );
    // On disk under the slot id, never the filename.
    const dir = `${t.dataDir}/http_file_share`;
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [id]);

    const got = await fetch(slot.get, { headers: { origin: "https://web.example" } });
    assert.equal(got.status, 200);
    assert.deepEqual(new Uint8Array(await got.arrayBuffer()), content);
    assert.equal(got.headers.get("content-type"), "text/plain");
    assert.equal(got.headers.get("content-length"), String(content.byteLength));
    assert.equal(
      got.headers.get("content-disposition"),
      "inline; filename*=UTF-8''hello%20w%C3%B6rld.txt",
    );
    assert.equal(got.headers.get("x-content-type-options"), "nosniff");
    assert.match(got.headers.get("content-security-policy")!, /default-src 'none'/);
    assert.equal(got.headers.get("access-control-allow-origin"), "*");
    assert.equal(got.headers.get("accept-ranges"), "bytes");
    const etag = got.headers.get("etag")!;
    assert.ok(got.headers.get("last-modified"));
    const cached = await fetch(slot.get, { headers: { "if-none-match": etag } });
    assert.equal(cached.status, 304);
    await cached.body?.cancel();

    // Ranges: a-b, a-, -n; one past the end is unsatisfiable.
    const range = async (r: string) => {
      const res = await fetch(slot.get, { headers: { range: r } });
      return [
        res.status,
        res.headers.get("content-range"),
        new Uint8Array(await res.arrayBuffer()),
      ];
    };
    const n = content.byteLength;
    assert.deepEqual(await range("bytes=2-5"), [206, `bytes 2-5/${n}`, content.slice(2, 6)]);
    assert.deepEqual(await range("bytes=7-"), [206, `bytes 7-${n - 1}/${n}`, content.slice(7)]);
    assert.deepEqual(await range("bytes=-4"), [
      206,
      `bytes ${n - 4}-${n - 1}/${n}`,
      content.slice(n - 4),
    ]);
    assert.deepEqual(await range("bytes=2-9999"), [206, `bytes 2-${n - 1}/${n}`, content.slice(2)]);
    const past = await range(`bytes=${n}-`);
    assert.deepEqual(past.slice(0, 2), [416, `bytes */${n}`]);

    // HEAD: the headers, no body.
    const head = await fetch(slot.get, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(n));
    assert.equal((await head.arrayBuffer()).byteLength, 0);

    // A CORS preflight for the PUT a web client makes.
    const pre = await fetch(slot.put, {
      method: "OPTIONS",
      headers: { origin: "https://web.example", "access-control-request-method": "PUT" },
    });
    await pre.body?.cancel();
    assert.equal(pre.status, 204);
    assert.match(pre.headers.get("access-control-allow-methods")!, /PUT/);
    assert.match(pre.headers.get("access-control-allow-headers")!, /Authorization/);

    // The slot is spent: a second PUT is a conflict, and the file stays.
    assert.equal(
      (await statusOf(put(slot.put, bytes("x".repeat(n)), { authorization: slot.auth })))[0],
      409,
    );
    assert.deepEqual(new Uint8Array(await (await fetch(slot.get)).arrayBuffer()), content);

    // A filename that is not the slot's, and an unknown slot: 404.
    assert.equal((await statusOf(fetch(slot.get.replace(/[^/]+$/, "other.txt"))))[0], 404);
    assert.equal(
      (await statusOf(fetch(slot.get.replace(id, crypto.randomUUID()))))[0],
      404,
    );

    // A filename that only looks like a path is a name like any other: the file
    // is stored under its slot id, and a traversal in the URL finds nothing.
    const odd = bytes("not /etc/passwd");
    const sneaky = await slotFor(alice, "..%2F..%2Fetc%2Fpasswd", odd);
    assert.match(sneaky.get, /\/\.\.%252F\.\.%252Fetc%252Fpasswd$/);
    assert.equal((await statusOf(put(sneaky.put, odd, { authorization: sneaky.auth })))[0], 201);
    assert.deepEqual(new Uint8Array(await (await fetch(sneaky.get)).arrayBuffer()), odd);
    for (const name of Deno.readDirSync(dir)) assert.match(name.name, /^[0-9a-f-]{36}$/);
    const base = slot.get.slice(0, slot.get.indexOf(id));
    for (const path of ["..%2F..%2Fetc%2Fpasswd", `${id}/..%2F..%2F..%2Fetc%2Fpasswd`]) {
      assert.equal((await statusOf(fetch(base + path)))[0], 404, path);
    }

    // Risky types are served, but as attachments that cannot run.
    const page = bytes("<script>alert(1)</script>");
    const html = await slotFor(alice, "page.html", page, "text/html");
    assert.equal(
      (await statusOf(
        put(html.put, page, { authorization: html.auth, "content-type": "text/html" }),
      ))[0],
      201,
    );
    const served = await fetch(html.get);
    await served.body?.cancel();
    assert.equal(served.headers.get("content-type"), "text/html");
    assert.equal(
      served.headers.get("content-disposition"),
      "attachment; filename*=UTF-8''page.html",
    );
    assert.match(served.headers.get("content-security-policy")!, /default-src 'none'/);
  });
});

Deno.test("http_file_share: refused requests get XEP-0363's errors", async () => {
  await withShare(async (login) => {
    const alice = await login("alice");
    // Too large: not-acceptable with the limit.
    const big = await request(alice, { filename: "big.bin", size: 2000, "content-type": "a/b" });
    assert.equal(big.attrs.type, "error");
    assert.equal(errorOf(big), "not-acceptable file-too-large");
    assert.equal(big.getChild("error").attrs.type, "modify");
    assert.equal(
      big.getChild("error").getChild("file-too-large", NS).getChildText("max-file-size"),
      "1000",
    );
    // Bad filenames, a missing or bad size: bad-request.
    for (
      const filename of ["", "a/b.txt", "a\\b.txt", "../../etc/passwd", "..", "x".repeat(256)]
    ) {
      const r = await request(alice, { filename, size: 10 });
      assert.equal(errorOf(r), "bad-request", `filename ${JSON.stringify(filename)}`);
    }
    assert.equal(errorOf(await request(alice, { size: 10 })), "bad-request");
    assert.equal(errorOf(await request(alice, { filename: "a.txt" })), "bad-request");
    assert.equal(errorOf(await request(alice, { filename: "a.txt", size: "-1" })), "bad-request");
    assert.equal(errorOf(await request(alice, { filename: "a.txt", size: "1e3" })), "bad-request");
    // A type not allowed: not-acceptable (no file-too-large).
    const exe = await request(alice, {
      filename: "a.exe",
      size: 10,
      "content-type": "application/x-msdownload",
    });
    assert.equal(errorOf(exe), "not-acceptable");
    // Allowed ones pass, wildcards included.
    slotOf(await request(alice, { filename: "a.png", size: 10, "content-type": "image/png" }));
    const slot = slotOf(
      await request(alice, { filename: "a.txt", size: 10, "content-type": "text/plain" }),
    );
    // The HTTP server itself refuses a body over the size limit, before any token check.
    assert.deepEqual(await statusOf(put(slot.put, new Uint8Array(1001), {})), [
      413,
      "Payload Too Large",
    ]);
    assert.equal((await statusOf(put(slot.put, new Uint8Array(1000), {})))[0], 401);
  }, {
    http_file_share_size_limit: 1000,
    http_file_share_allowed_file_types: ["image/*", "text/plain"],
  });
});

Deno.test("http_file_share: the PUT checks its token, size and type; a cut-short upload leaves nothing", async () => {
  await withShare(async (login, t) => {
    const alice = await login("alice");
    const content = bytes("0123456789");
    const slot = await slotFor(alice, "digits.txt", content);
    const id = new URL(slot.put).pathname.split("/")[2];
    // No token: 401; a forged one (signature changed): 403; another slot's token: 403.
    assert.equal((await statusOf(put(slot.put, content, {})))[0], 401);
    const forged = slot.auth.slice(0, -2) + (slot.auth.endsWith("AA") ? "BB" : "AA");
    assert.deepEqual(await statusOf(put(slot.put, content, { authorization: forged })), [
      403,
      "Invalid token",
    ]);
    const other = await slotFor(alice, "other.txt", content);
    assert.deepEqual(await statusOf(put(slot.put, content, { authorization: other.auth })), [
      403,
      "Invalid token",
    ]);
    // The token names its file: the same token for another filename is refused.
    assert.equal(
      (await statusOf(put(slot.put.replace("digits", "digitz"), content, {
        authorization: slot.auth,
      })))[0],
      403,
    );
    // More than the slot's size: 413; less: 400; another type: 400.
    assert.equal(
      (await statusOf(put(slot.put, bytes("0123456789X"), { authorization: slot.auth })))[0],
      413,
    );
    assert.equal(
      (await statusOf(put(slot.put, bytes("012345678"), { authorization: slot.auth })))[0],
      400,
    );
    assert.deepEqual(
      await statusOf(put(slot.put, content, {
        authorization: slot.auth,
        "content-type": "image/png",
      })),
      [400, "Content-Type does not match the slot's"],
    );
    // A body cut short (the client promised 10 bytes, sent 4 and went away): the
    // partial file is removed once the server sees the connection end.
    const url = new URL(slot.put);
    const socket = connect(Number(url.port), "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    socket.on("data", () => {});
    socket.on("error", () => {});
    socket.write(
      `PUT ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: ${slot.auth}\r\n` +
        `Content-Length: 10\r\n\r\n0123`,
    );
    const dir = `${t.dataDir}/http_file_share`;
    const names = () => [...Deno.readDirSync(dir)].map((e) => e.name);
    await until(() => Promise.resolve(names().includes(`${id}.part`)));
    socket.destroy();
    await until(() => Promise.resolve(names().length === 0));
    // Once the server has given up on it, the slot can still be used (it never was).
    let done: [number, string] = [0, ""];
    await until(async () => {
      done = await statusOf(put(slot.put, content, { authorization: slot.auth }));
      return done[1] !== "Upload in progress";
    });
    assert.deepEqual(done, [201, "Created"]);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [id]);
    assert.deepEqual(new Uint8Array(await (await fetch(slot.get)).arrayBuffer()), content);
  });
});

Deno.test("http_file_share: a PUT URL stops working after http_file_share_slot_lifetime", async () => {
  await withShare(async (login) => {
    const alice = await login("alice");
    const content = bytes("late");
    const slot = await slotFor(alice, "late.txt", content);
    await sleep(2100);
    assert.deepEqual(await statusOf(put(slot.put, content, { authorization: slot.auth })), [
      403,
      "Token expired",
    ]);
    assert.equal((await statusOf(fetch(slot.get)))[0], 404);
  }, { http_file_share_slot_lifetime: 1 });
});

Deno.test("http_file_share: users of other servers are forbidden", async () => {
  const componentPort = await freePort();
  const GW = "gw.localhost";
  await withShare(
    async () => {
      const gw = component({
        service: `xmpp://127.0.0.1:${componentPort}`,
        domain: GW,
        password: "s",
      });
      gw.reconnect?.stop?.();
      const received: XmlElement[] = [];
      gw.on("stanza", (s: XmlElement) => received.push(s));
      gw.on("error", () => {});
      await gw.start();
      try {
        for (const from of [`someone@${GW}`, GW]) {
          const id = `gw${++seq}`;
          await gw.send(
            xml(
              "iq",
              { type: "get", id, from, to: UPLOAD },
              xml("request", { xmlns: NS, filename: "a.txt", size: "10" }),
            ),
          );
          await until(() => Promise.resolve(received.some((s) => s.attrs.id === id)));
          const reply = received.find((s) => s.attrs.id === id);
          assert.equal(reply.attrs.type, "error");
          assert.equal(errorOf(reply), "forbidden");
          assert.equal(reply.getChild("error").attrs.type, "auth");
        }
      } finally {
        await gw.stop().catch(() => {});
      }
    },
    {},
    {
      components: {
        [UPLOAD]: { module: "http_file_share" },
        [GW]: { component_secret: "s" },
      },
      component_ports: [componentPort],
    },
  );
});

Deno.test("http_file_share: the daily quota (with when to retry) and the global quota", async () => {
  await withShare(async (login) => {
    const alice = await login("alice");
    const bob = await login("bob");
    slotOf(await request(alice, { filename: "a1", size: 1000 }));
    const before = Date.now();
    const over = await request(alice, { filename: "a2", size: 600 });
    assert.equal(over.attrs.type, "error");
    assert.equal(errorOf(over), "resource-constraint retry");
    assert.equal(over.getChild("error").attrs.type, "wait");
    const retry = Date.parse(over.getChild("error").getChild("retry", NS).attrs.stamp);
    assert.ok(Math.abs(retry - (before + 86400_000)) < 5000, `retry ${new Date(retry)}`);
    // Within the quota still works.
    slotOf(await request(alice, { filename: "a3", size: 500 }));
    // Bob has a quota of his own, but the server is full (1500 + 600 > 2000).
    slotOf(await request(bob, { filename: "b1", size: 400 }));
    const full = await request(bob, { filename: "b2", size: 200 });
    assert.equal(errorOf(full), "resource-constraint");
    assert.equal(full.getChild("error").attrs.type, "wait");
  }, {
    http_file_share_size_limit: 1000,
    http_file_share_daily_quota: 1500,
    http_file_share_global_quota: 2000,
  });
});

Deno.test("http_file_share: the sweep deletes expired files", async () => {
  await withShare(async (login, t) => {
    const alice = await login("alice");
    const content = bytes("short-lived");
    const slot = await slotFor(alice, "short.txt", content);
    assert.equal(
      (await statusOf(put(slot.put, content, { authorization: slot.auth })))[0],
      201,
    );
    assert.equal((await statusOf(fetch(slot.get)))[0], 200);
    const file = `${t.dataDir}/http_file_share/${new URL(slot.get).pathname.split("/")[2]}`;
    assert.ok(Deno.statSync(file).isFile);
    await until(async () => (await statusOf(fetch(slot.get)))[0] === 404, 10_000);
    assert.throws(() => Deno.statSync(file), Deno.errors.NotFound);
  }, { http_file_share_expires_after: 1, http_file_share_cleanup_interval: 1 });
});

Deno.test("http_file_share: a 20 MB upload is refused by default and streams through a raised limit", async () => {
  const size = 20 * 1000 * 1000;
  const body = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) body[i] = (i / 4096) & 0xff;
  await withShare(async (login) => {
    const alice = await login("alice");
    const r = await request(alice, { filename: "big.bin", size });
    assert.equal(
      r.getChild("error").getChild("file-too-large", NS).getChildText("max-file-size"),
      String(10 << 20),
    );
  });
  await withShare(async (login) => {
    const alice = await login("alice");
    const slot = await slotFor(alice, "big.bin", body, "application/octet-stream");
    assert.equal(
      (await statusOf(put(slot.put, body, { authorization: slot.auth })))[0],
      201,
    );
    const got = await fetch(slot.get);
    assert.equal(got.headers.get("content-length"), String(size));
    assert.equal(got.headers.get("content-disposition"), "attachment; filename*=UTF-8''big.bin");
    const hash = createHash("sha256");
    for await (const chunk of got.body!) hash.update(chunk);
    assert.equal(hash.digest("hex"), createHash("sha256").update(body).digest("hex"));
  }, { http_file_share_size_limit: 30 << 20 });
});

Deno.test("http_file_share: uploaded files are still served after a restart", async () => {
  const httpPort = await freePort();
  const options = {
    http_ports: [httpPort],
    http_external_url: `http://127.0.0.1:${httpPort}`,
    components: { [UPLOAD]: { module: "http_file_share" } },
  };
  const first = await startTestServer(options);
  let dir = first.dataDir;
  try {
    await first.server.users("localhost")!.createUser("alice", "pw");
    const alice = await connectXmpp(first.port, "alice", "pw", "r");
    const content = bytes("kept across a restart");
    const slot = await slotFor(alice, "kept.txt", content);
    assert.equal((await statusOf(put(slot.put, content, { authorization: slot.auth })))[0], 201);
    await alice.stop();
    await first.stop({ keepData: true });
    const second = await startTestServer(options, dir);
    dir = "";
    try {
      assert.deepEqual(new Uint8Array(await (await fetch(slot.get)).arrayBuffer()), content);
    } finally {
      await second.stop();
    }
  } finally {
    await first.stop();
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
