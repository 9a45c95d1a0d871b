/**
 * The web admin in a real browser: headless Chromium logs in to `/admin` as
 * the server's admin, finds juliet's session (a TCP client) on the host's
 * page, kicks it with the page's button, and the session is gone from the
 * server and from the page. Screenshots saved to `$CADENCE_ARTIFACTS` (else a
 * temporary directory).
 */
import assert from "node:assert/strict";
import { browserReady, launchBrowser, type PageDocument } from "../helpers/browser.ts";
import { startTestServer } from "../helpers/server.ts";
import { connectXmpp } from "../helpers/xmppclient.ts";

declare const document: PageDocument & { body: { innerText: string } };

Deno.test("browser: an admin logs in to /admin and kicks a TCP client's session", async () => {
  if (!await browserReady()) return;
  const t = await startTestServer({
    authentication: "internal_hashed",
    admins: ["admin@localhost"],
    modules_enabled: ["roster", "saslauth", "tls", "disco", "ping", "presence", "admin_web"],
  });
  const browser = await launchBrowser();
  let juliet: Awaited<ReturnType<typeof connectXmpp>> | undefined;
  try {
    for (const u of ["admin", "juliet"]) await t.server.users("localhost")!.createUser(u, "pw");
    juliet = await connectXmpp(t.port, "juliet", "pw", "balcony");
    const jid = juliet.jid;
    assert.ok(t.server.sessions.full.has(jid));
    const kicked = new Promise<{ condition: string; text: string }>((resolve) =>
      juliet!.xmpp.on("error", resolve)
    );

    const base = `http://127.0.0.1:${t.httpPort}/admin`;
    const page = await browser.open(`${base}/`);
    await page.waitForSelector("#username");
    await page.type("#username", "admin@localhost");
    await page.type("#password", "pw");
    await page.press("Enter");
    await page.waitForSelector("#whoami", { timeout: 10_000 });
    assert.equal(
      await page.eval(`document.querySelector("#whoami").textContent`),
      "admin@localhost",
    );
    assert.equal(
      await page.eval(`document.cookie`),
      "",
      "the session cookie is HttpOnly: scripts never see it",
    );

    const dir = Deno.env.get("CADENCE_ARTIFACTS") ??
      await Deno.makeTempDir({ prefix: "cadence-artifacts-" });
    await Deno.mkdir(dir, { recursive: true });
    await page.screenshot(`${dir}/browser_admin_overview.png`, { fullPage: true });

    await page.goto(`${base}/host/localhost`);
    await page.waitForSelector("#sessions tr.session");
    const row = await page.eval<string>(
      `document.querySelector("#sessions tr.session").innerText`,
    );
    assert.ok(row.includes(jid), row);
    assert.ok(row.includes("127.0.0.1"), row);
    assert.ok(row.includes("yes"), `TLS: ${row}`);

    await page.screenshot(`${dir}/browser_admin_sessions.png`, { fullPage: true });

    // The kick button: the client gets the stream error, the server drops the session.
    await page.click("#sessions tr.session form.kick button");
    const error = await kicked;
    assert.equal(error.condition, "policy-violation");
    assert.equal(error.text, "Kicked by an administrator");
    for (let i = 0; i < 100 && t.server.sessions.full.has(jid); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(t.server.sessions.full.has(jid), false, "the session is gone");
    // The page comes back (POST, then 303) without her session.
    await page.waitFor(() => document.querySelector("#flash") !== null, { timeout: 10_000 });
    const text = await page.eval<string>(`document.body.innerText`);
    assert.ok(text.includes(`Kicked ${jid}.`), text);
    assert.equal(await page.eval(`document.querySelectorAll("#sessions tr.session").length`), 0);
    assert.ok(text.includes("Online sessions (0)"), text);

    await page.screenshot(`${dir}/browser_admin_kicked.png`, { fullPage: true });
    console.log(`screenshots: ${dir}/browser_admin_{overview,sessions,kicked}.png`);
    assert.deepEqual(
      page.console.filter((l) => /error/i.test(l)),
      [],
      "no errors (CSP violations included) in the page",
    );
  } finally {
    await juliet?.stop();
    await browser.close();
    await t.stop();
  }
});
