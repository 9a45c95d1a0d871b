/**
 * The web admin over real HTTP (fetch, cookies by hand) against a real
 * server with TCP clients: who may log in, the session cookie and its end,
 * CSRF and Origin checks, the security headers, sessions listed with their
 * address and TLS and kicked, accounts created, changed and deleted, values
 * escaped, failed logins limited, and the charts' samples.
 */
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { connectXmpp } from "../helpers/xmppclient.ts";
import { html } from "../../modules/admin_web/html.ts";
import { AdminSessions, LoginLimiter } from "../../modules/admin_web/auth.ts";
import { SampleRing } from "../../modules/admin_web/samples.ts";

const OPTIONS = {
  authentication: "internal_hashed",
  admins: ["admin@localhost"],
  modules_enabled: ["roster", "saslauth", "tls", "disco", "ping", "presence", "admin_web"],
};

async function withServer(fn: (t: TestServer) => Promise<void>, extra = {}) {
  const t = await startTestServer({ ...OPTIONS, ...extra });
  try {
    const users = t.server.users("localhost")!;
    for (const u of ["admin", "juliet", "romeo"]) await users.createUser(u, "pw");
    await fn(t);
  } finally {
    await t.stop();
  }
}

/** A browser's worth of HTTP: one cookie jar, redirects not followed. */
class Admin {
  cookie = "";
  constructor(readonly t: TestServer) {}

  url(path: string) {
    return `http://127.0.0.1:${this.t.httpPort}/admin${path}`;
  }

  async get(path: string): Promise<{ status: number; text: string; headers: Headers }> {
    const r = await fetch(this.url(path), {
      headers: this.cookie ? { cookie: this.cookie } : {},
      redirect: "manual",
    });
    return { status: r.status, text: tidy(await r.text()), headers: r.headers };
  }

  async post(
    path: string,
    fields: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; text: string; headers: Headers }> {
    const r = await fetch(this.url(path), {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...headers,
      },
      body: new URLSearchParams(fields).toString(),
      redirect: "manual",
    });
    const setCookie = r.headers.get("set-cookie");
    if (setCookie) this.cookie = setCookie.split(";")[0];
    return { status: r.status, text: tidy(await r.text()), headers: r.headers };
  }

  login(username = "admin@localhost", password = "pw") {
    return this.post("/login", { username, password });
  }

  /** The CSRF token the forms of a page carry. */
  async csrf(path = "/"): Promise<string> {
    const page = await this.get(path);
    const m = /name="csrf" value="([^"]+)"/.exec(page.text);
    assert.ok(m, `no csrf field in ${page.text.slice(0, 300)}`);
    return m[1];
  }
}

/** Markup without the whitespace between tags (the templates are laid out for reading). */
const tidy = (text: string) => text.replace(/>\s+</g, "><").replace(/\s+/g, " ");

async function until(test: () => boolean, ms = 5000): Promise<boolean> {
  for (let i = 0; i < ms / 20 && !test(); i++) await new Promise((r) => setTimeout(r, 20));
  return test();
}

Deno.test("admin_web: html escapes what it interpolates; sessions expire and are capped", () => {
  const name = `<script>alert("x")</script>&'`;
  assert.equal(
    html`<p title="${name}">${name}${[1, html`<b>${"<i>"}</b>`]}</p>`.text,
    `<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">` +
      `&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;1<b>&lt;i&gt;</b></p>`,
  );
  let now = 0;
  const sessions = new AdminSessions(1000, 2, () => now);
  const a = sessions.create("a@h", ["h"]);
  assert.equal(a.token.length, 43, "32 random bytes");
  assert.notEqual(a.token, a.csrf);
  now = 900;
  assert.equal(sessions.get(a.token)?.jid, "a@h", "used: idle time starts again");
  now = 1800;
  assert.ok(sessions.get(a.token), "still within the idle time");
  now = 2801;
  assert.equal(sessions.get(a.token), undefined, "idle too long");
  const b = sessions.create("b@h", ["h"]);
  const c = sessions.create("c@h", ["h"]);
  sessions.create("d@h", ["h"]);
  assert.equal(sessions.size, 2);
  assert.equal(sessions.get(b.token), undefined, "the stalest went for the new one");
  assert.ok(sessions.get(c.token));

  const limiter = new LoginLimiter(2, 10, () => now);
  limiter.failed("1.2.3.4");
  assert.equal(limiter.limited("1.2.3.4"), false);
  limiter.failed("1.2.3.4");
  assert.equal(limiter.limited("1.2.3.4"), true);
  assert.equal(limiter.limited("5.6.7.8"), false);
  now += 60_001;
  assert.equal(limiter.limited("1.2.3.4"), false, "a minute later");

  const ring = new SampleRing(3);
  for (let i = 1; i <= 5; i++) ring.push({ t: i, sessions: i, connections: 0, rss: 0, stanzas: 0 });
  assert.deepEqual(ring.series("sessions"), [[3, 3], [4, 4], [5, 5]], "bounded, oldest first");
});

Deno.test("admin_web: only admins log in; the page is refused to everyone else", async () => {
  await withServer(async (t) => {
    const anon = new Admin(t);
    const first = await anon.get("/");
    assert.equal(first.status, 200);
    assert.match(first.text, /<form method="post" action="\/admin\/login"/);
    assert.equal(
      first.headers.get("content-security-policy")?.startsWith(
        "default-src 'self'; script-src 'self'",
      ),
      true,
    );
    assert.equal(first.headers.get("x-frame-options"), "DENY");
    assert.equal(first.headers.get("cache-control"), "no-store");
    assert.equal(first.headers.get("referrer-policy"), "same-origin", "(Origin: null otherwise)");
    assert.equal((await anon.get("/host/localhost")).status, 303, "not logged in: to the login");

    // A user who is not an admin: refused whether the password is right or not.
    for (const password of ["pw", "wrong"]) {
      const juliet = new Admin(t);
      const r = await juliet.login("juliet@localhost", password);
      assert.equal(r.status, 403);
      assert.match(r.text, /Not an administrator/);
      assert.equal(juliet.cookie, "", "no session");
    }
    // The admin with a wrong password, and an unknown host.
    const wrong = new Admin(t);
    const r = await wrong.login("admin@localhost", "nope");
    assert.equal(r.status, 403);
    assert.match(r.text, /Wrong address or password/);
    assert.equal(wrong.cookie, "");
    assert.match((await wrong.login("admin@elsewhere", "pw")).text, /Wrong address or password/);

    // The admin: a cookie, then the overview.
    const admin = new Admin(t);
    const ok = await admin.login("Admin@LOCALHOST", "pw");
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get("location"), "/admin/");
    const cookie = ok.headers.get("set-cookie")!;
    assert.match(cookie, /^cadence_admin=[A-Za-z0-9_-]{43}; /);
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Strict/);
    assert.match(cookie, /; Path=\/admin/);
    assert.doesNotMatch(cookie, /Secure/, "plain HTTP");
    const overview = await admin.get("/");
    assert.match(overview.text, /id="whoami">admin@localhost</);
    assert.match(
      overview.text,
      /<a href="\/admin\/host\/localhost">localhost<\/a><\/td><td>3<\/td>/,
    );
    assert.match(overview.text, /<svg /);
    assert.match(overview.text, /id="uptime">\d/);
  });
});

Deno.test("admin_web: failed logins are limited per address (429)", async () => {
  await withServer(async (t) => {
    const a = new Admin(t);
    for (let i = 0; i < 5; i++) assert.equal((await a.login("admin@localhost", "x")).status, 403);
    const r = await a.login("admin@localhost", "pw");
    assert.equal(r.status, 429, "even the right password, for now");
    assert.match(r.text, /Too many failed logins/);
    assert.equal(a.cookie, "");
  });
});

Deno.test("admin_web: sessions are listed with address and TLS, escaped, and kicked (CSRF checked)", async () => {
  await withServer(async (t) => {
    const juliet = await connectXmpp(t.port, "juliet", "pw", "balcony");
    const evil = await connectXmpp(t.port, "romeo", "pw", `<script>alert(1)</script>`);
    try {
      const admin = new Admin(t);
      assert.equal((await admin.login()).status, 303);
      const jid = juliet.jid; // (the server adds to the resource asked for)
      assert.match(jid, /^juliet@localhost\/balcony/);
      const session = t.server.sessions.full.get(jid)!;
      assert.ok(session);
      const host = await admin.get("/host/localhost");
      assert.equal(host.status, 200);
      const row = new RegExp(
        `<td class="jid">${jid}</td><td class="ip">127\\.0\\.0\\.1</td>` +
          `<td class="client">${juliet.jid.split("/")[1]}</td><td class="tls">${
            session.secure ? "yes" : "no"
          }</td>`,
      );
      assert.match(host.text, row);
      assert.equal(session.secure, true, "@xmpp/client took STARTTLS");
      // The resource is shown escaped, never as markup.
      assert.match(host.text, /romeo@localhost\/&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
      assert.doesNotMatch(host.text, /<script>/);
      // Accounts are listed.
      for (const u of ["admin", "juliet", "romeo"]) {
        assert.match(host.text, new RegExp(`<td class="user">${u}@localhost</td>`));
      }

      // A POST without the CSRF token, or with another, or from elsewhere: 403.
      assert.equal((await admin.post("/host/localhost/kick", { jid })).status, 403);
      assert.equal((await admin.post("/host/localhost/kick", { jid, csrf: "x" })).status, 403);
      const csrf = await admin.csrf("/host/localhost");
      const foreign = await admin.post("/host/localhost/kick", { jid, csrf }, {
        origin: "http://evil.example",
      });
      assert.equal(foreign.status, 403);
      const opaque = await admin.post("/host/localhost/kick", { jid, csrf }, { origin: "null" });
      assert.equal(opaque.status, 403, "an opaque origin (a sandboxed frame, a data: URL)");
      assert.equal((await new Admin(t).post("/host/localhost/kick", { jid, csrf })).status, 403);
      assert.ok(t.server.sessions.full.has(jid), "still online");

      // With it (and the server's own Origin): kicked.
      const error = new Promise<{ condition: string; text: string }>((resolve) =>
        juliet.xmpp.on("error", resolve)
      );
      const kicked = await admin.post("/host/localhost/kick", { jid, csrf }, {
        origin: `http://127.0.0.1:${t.httpPort}`,
      });
      assert.equal(kicked.status, 303);
      assert.equal(kicked.headers.get("location"), "/admin/host/localhost");
      const e = await error;
      assert.equal(e.condition, "policy-violation");
      assert.equal(e.text, "Kicked by an administrator");
      assert.ok(await until(() => !t.server.sessions.full.has(jid)));
      const after = await admin.get("/host/localhost");
      assert.match(after.text, /id="flash">Kicked juliet@localhost\/balcony[^<]*\.</);
      assert.doesNotMatch(after.text, /class="jid">juliet@/);
      assert.match(after.text, /Online sessions \(1\)/);
    } finally {
      await juliet.stop();
      await evil.stop();
    }
  });
});

Deno.test("admin_web: accounts are created, their passwords changed, and deleted", async () => {
  await withServer(async (t) => {
    const admin = new Admin(t);
    await admin.login();
    const csrf = await admin.csrf("/host/localhost");
    const post = (what: string, fields: Record<string, string>) =>
      admin.post(`/host/localhost/${what}`, { ...fields, csrf });

    assert.equal((await post("create", { username: "Nurse", password: "first" })).status, 303);
    assert.match((await admin.get("/host/localhost")).text, /Created nurse@localhost\./);
    const nurse = await connectXmpp(t.port, "nurse", "first", "a");
    await nurse.stop();
    await post("create", { username: "nurse", password: "again" });
    assert.match((await admin.get("/host/localhost")).text, /already exists/);
    await post("create", { username: "a b", password: "x" });
    assert.match((await admin.get("/host/localhost")).text, /Invalid username/);

    await post("password", { username: "nurse", password: "second" });
    assert.match((await admin.get("/host/localhost")).text, /Changed the password of nurse@/);
    const users = t.server.users("localhost")!;
    assert.equal(await users.testPassword("nurse", "first"), false);
    const again = await connectXmpp(t.port, "nurse", "second", "b");
    try {
      assert.ok(t.server.sessions.full.has(again.jid));
      await post("delete", { username: "nurse" });
      assert.match((await admin.get("/host/localhost")).text, /Deleted nurse@localhost\./);
      assert.equal(await users.userExists("nurse"), false);
      assert.ok(
        await until(() => !t.server.sessions.full.has(again.jid)),
        "its sessions end",
      );
    } finally {
      await again.stop();
    }
    assert.doesNotMatch((await admin.get("/host/localhost")).text, /class="user">nurse@/);
  });
});

Deno.test("admin_web: logging out ends the session: the old cookie opens nothing", async () => {
  await withServer(async (t) => {
    const admin = new Admin(t);
    await admin.login();
    const csrf = await admin.csrf();
    const cookie = admin.cookie;
    assert.equal((await admin.post("/logout", {})).status, 403, "logout needs the token too");
    const out = await admin.post("/logout", { csrf });
    assert.equal(out.status, 303);
    assert.match(out.headers.get("set-cookie")!, /^cadence_admin=; .*Max-Age=0/);
    admin.cookie = cookie; // a client that kept it
    const page = await admin.get("/");
    assert.match(page.text, /action="\/admin\/login"/);
    assert.doesNotMatch(page.text, /whoami/);
    const r = await admin.post("/host/localhost/create", { username: "x", password: "y", csrf });
    assert.equal(r.status, 403);
    assert.equal(await t.server.users("localhost")!.userExists("x"), false);
  });
});

Deno.test("admin_web: samples taken at the interval make the charts", async () => {
  await withServer(async (t) => {
    const juliet = await connectXmpp(t.port, "juliet", "pw", "chart");
    try {
      const admin = new Admin(t);
      await admin.login();
      let text = "";
      for (let i = 0; i < 50; i++) {
        text = (await admin.get("/")).text;
        if (/Client sessions: <b>1<\/b>/.test(text) && /<path d="M/.test(text)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(text, /Client sessions: <b>1<\/b>/);
      assert.match(text, /<path d="M/);
      assert.match(text, /Memory \(RSS\): <b>\d+\.\d MiB<\/b>/);
      assert.match(text, /Connections: <b>[1-9]/);
      assert.match(text, /id="connections">[1-9]/, "read now, not at the last sample");
    } finally {
      await juliet.stop();
    }
  }, { admin_web_sample_interval: 0.1 });
});

Deno.test("admin_web: an admin listed in a host's own admins manages that host only", async () => {
  await withServer(async (t) => {
    await t.server.users("example.test")!.createUser("boss", "pw");
    const boss = new Admin(t);
    assert.equal((await boss.login("boss@example.test", "pw")).status, 303);
    const overview = await boss.get("/");
    assert.match(overview.text, /href="\/admin\/host\/example\.test"/);
    assert.doesNotMatch(overview.text, /href="\/admin\/host\/localhost"/);
    assert.equal((await boss.get("/host/example.test")).status, 200);
    assert.equal((await boss.get("/host/localhost")).status, 404);
    const csrf = await boss.csrf();
    const r = await boss.post("/host/localhost/delete", { username: "juliet", csrf });
    assert.equal(r.status, 404);
    assert.ok(await t.server.users("localhost")!.userExists("juliet"));
    // The global admin manages both.
    const admin = new Admin(t);
    await admin.login();
    const all = await admin.get("/");
    assert.match(all.text, /href="\/admin\/host\/example\.test"/);
    assert.match(all.text, /href="\/admin\/host\/localhost"/);
  }, { virtual_hosts: { localhost: {}, "example.test": { admins: ["boss@example.test"] } } });
});
