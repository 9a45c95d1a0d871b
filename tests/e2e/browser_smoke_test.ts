/**
 * Groundwork for the browser tests: headless Chromium loads converse.js from
 * a loopback server and shows its login form. No XMPP server: the WebSocket
 * URL points at a closed port, and auto_login is off.
 *
 * The screenshot goes to `$CADENCE_ARTIFACTS` if set, else to a temporary
 * directory; its path is printed.
 */
import assert from "node:assert/strict";
import {
  browserReady,
  launchBrowser,
  type PageDocument,
  serveConverse,
} from "../helpers/browser.ts";

declare const document: PageDocument;

Deno.test("browser: converse.js shows its login form", async () => {
  if (!await browserReady()) return;
  const started = performance.now();
  const site = await serveConverse({
    websocket_url: "ws://127.0.0.1:1/xmpp-websocket",
    view_mode: "fullscreen",
    auto_login: false,
    discover_connection_methods: false,
    play_sounds: false,
    show_send_button: true,
  });
  const browser = await launchBrowser();
  try {
    const page = await browser.open(site.url);
    await page.waitForSelector("#converse-login-jid", { timeout: 30_000 });
    const form = await page.eval(() => {
      const jid = document.querySelector("#converse-login-jid");
      const f = jid?.closest("form");
      return {
        form: f !== null && f !== undefined,
        password: document.querySelector("#converse-login-password") !== null,
        submit: f?.querySelector("[type=submit]") !== null,
      };
    });
    assert.deepEqual(form, { form: true, password: true, submit: true });
    assert.equal(await page.eval("typeof converse"), "object");

    const dir = Deno.env.get("CADENCE_ARTIFACTS") ??
      await Deno.makeTempDir({ prefix: "cadence-artifacts-" });
    await Deno.mkdir(dir, { recursive: true });
    const shot = `${dir}/browser_smoke_login.png`;
    await page.eval("document.fonts.ready.then(() => true)");
    await page.screenshot(shot);
    const png = await Deno.readFile(shot);
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    console.log(
      `screenshot: ${shot} (${png.length} bytes), ${Math.round(performance.now() - started)} ms`,
    );
  } finally {
    await browser.close();
    await site.close();
  }
});
