/**
 * A real web client in a real browser: headless Chromium runs converse.js,
 * which logs in to Cadence over WebSocket (RFC 7395) as juliet, gets a
 * message from romeo (a TCP client) and answers it. Screenshot saved to
 * `$CADENCE_ARTIFACTS` (else a temporary directory).
 */
import assert from "node:assert/strict";
import {
  browserReady,
  converseLogin,
  launchBrowser,
  type PageDocument,
  serveConverse,
} from "../helpers/browser.ts";
import { startTestServer } from "../helpers/server.ts";
import { connectXmpp, xml } from "../helpers/xmppclient.ts";

declare const document: PageDocument & { body: { innerText: string } };

Deno.test("browser: converse.js logs in over WebSocket and chats with a TCP client", async () => {
  if (!await browserReady()) return;
  const t = await startTestServer({
    authentication: "internal_hashed",
    // ws:// on loopback stands for a TLS-ending proxy in front.
    consider_websocket_secure: true,
  });
  const site = await serveConverse({
    websocket_url: `ws://127.0.0.1:${t.httpPort}/xmpp-websocket`,
    view_mode: "fullscreen",
    auto_login: false,
    discover_connection_methods: false,
    play_sounds: false,
    allow_non_roster_messaging: true,
    show_send_button: true,
  });
  const browser = await launchBrowser();
  let romeo: Awaited<ReturnType<typeof connectXmpp>> | undefined;
  try {
    for (const u of ["juliet", "romeo"]) await t.server.users("localhost")!.createUser(u, "pw");
    const page = await browser.open(site.url);
    // Logged in: Cadence has her session, served over the WebSocket.
    const jid = await converseLogin(
      page,
      "juliet@localhost",
      "pw",
      () => [...t.server.sessions.full.keys()].find((j) => j.startsWith("juliet@localhost/")),
    );
    assert.equal(t.server.sessions.full.get(jid)!.conn.canStartTls, false);
    // romeo writes to her; converse shows it.
    romeo = await connectXmpp(t.port, "romeo", "pw", "tcp");
    await romeo.send(xml("presence")); // (available: her answer goes to his bare JID)
    await new Promise((r) => setTimeout(r, 500)); // (converse sends its presence after login)
    await romeo.send(
      xml("message", { to: jid, type: "chat" }, [xml("body", {}, "hello from tcp")]),
    );
    // It shows as a new message from romeo in the contacts list; opening it shows the text.
    await page.waitFor(() => document.body.innerText.includes("New messages"), {
      timeout: 20_000,
    });
    await page.eval(
      `[...document.querySelectorAll("a")].find((a) => a.textContent.includes("romeo@loc"))?.click()`,
    );
    await page.waitFor(() => document.body.innerText.includes("hello from tcp"), {
      timeout: 20_000,
    });
    // She answers from the chat box.
    await page.waitForSelector(".chat-textarea", { timeout: 10_000 });
    await page.type(".chat-textarea", "hello from the browser");
    await page.press("Enter");
    const answer = await romeo.waitFor((s) => s.is("message") && s.getChildText("body") !== null);
    assert.equal(answer.getChildText("body"), "hello from the browser");
    assert.equal(answer.attrs.from, jid);

    const dir = Deno.env.get("CADENCE_ARTIFACTS") ??
      await Deno.makeTempDir({ prefix: "cadence-artifacts-" });
    await Deno.mkdir(dir, { recursive: true });
    await page.screenshot(`${dir}/browser_converse_chat.png`);
    console.log(`screenshot: ${dir}/browser_converse_chat.png`);
  } finally {
    await romeo?.stop();
    await browser.close();
    await site.close();
    await t.stop();
  }
});
