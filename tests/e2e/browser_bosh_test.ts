/**
 * converse.js in headless Chromium over BOSH (XEP-0206; the WebSocket
 * module is off, so BOSH is the only way in): juliet logs in, adds romeo
 * (a TCP client) as a contact from converse's "Add a contact" form, they
 * chat, and she sends him a picture through converse's upload button
 * (XEP-0363, the `http_file_share` component): the browser PUTs it to
 * Cadence, romeo gets the link and downloads the same bytes, and the
 * browser shows the picture it fetched back. Screenshots go to
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
import { freePort, startTestServer } from "../helpers/server.ts";
import { connectXmpp, xml } from "../helpers/xmppclient.ts";

declare const document: PageDocument & {
  body: { innerText: string };
  querySelectorAll(s: string): ArrayLike<{ src: string; naturalWidth: number }>;
};

Deno.test("browser: converse.js over BOSH adds a contact, chats, uploads and downloads a file", async () => {
  if (!await browserReady()) return;
  const httpPort = await freePort();
  const t = await startTestServer({
    authentication: "internal_hashed",
    // http:// on loopback stands for a TLS-ending proxy in front.
    consider_bosh_secure: true,
    modules_disabled: ["websocket"],
    http_ports: [httpPort],
    http_external_url: `http://127.0.0.1:${httpPort}`,
    components: { "upload.localhost": { module: "http_file_share" } },
  } as never);
  const site = await serveConverse({
    bosh_service_url: `http://127.0.0.1:${httpPort}/http-bind`,
    view_mode: "fullscreen",
    auto_login: false,
    discover_connection_methods: false,
    play_sounds: false,
    show_send_button: true,
  });
  const browser = await launchBrowser();
  let romeo: Awaited<ReturnType<typeof connectXmpp>> | undefined;
  const artifacts = Deno.env.get("CADENCE_ARTIFACTS") ??
    await Deno.makeTempDir({ prefix: "cadence-artifacts-" });
  await Deno.mkdir(artifacts, { recursive: true });
  try {
    for (const u of ["juliet", "romeo"]) await t.server.users("localhost")!.createUser(u, "pw");
    romeo = await connectXmpp(t.port, "romeo", "pw", "tcp");
    await romeo.send(xml("presence"));

    const page = await browser.open(site.url);
    const jid = await converseLogin(
      page,
      "juliet@localhost",
      "pw",
      () => [...t.server.sessions.full.keys()].find((j) => j.startsWith("juliet@localhost/")),
    );

    // She adds romeo from the "Add a contact" form; he accepts.
    await page.click("a.add-contact");
    await page.waitForSelector("input[name=jid]");
    await page.type("input[name=jid]", "romeo@localhost");
    await page.type("input[name=name]", "Romeo");
    await page.press("Enter");
    const ask = await romeo.waitFor(
      (s) => s.is("presence") && s.attrs.type === "subscribe",
      20_000,
    );
    assert.equal(ask.attrs.from, "juliet@localhost");
    await romeo.send(xml("presence", { to: "juliet@localhost", type: "subscribed" }));
    let item: { subscription: string } | undefined;
    for (let i = 0; i < 100 && item?.subscription !== "to"; i++) {
      item = (await t.server.rosters.load("juliet", "localhost")).items.get("romeo@localhost");
      if (item?.subscription !== "to") await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(item?.subscription, "to", "romeo is in juliet's roster, subscribed to");
    await page.waitFor(() => document.body.innerText.includes("Romeo"), { timeout: 20_000 });

    // They chat.
    await romeo.send(
      xml("message", { to: jid, type: "chat" }, [xml("body", {}, "hello over bosh")]),
    );
    await page.eval(
      `[...document.querySelectorAll("a")].find((a) => a.textContent.includes("Romeo"))?.click()`,
    );
    await page.waitFor(() => document.body.innerText.includes("hello over bosh"), {
      timeout: 20_000,
    });
    await page.waitForSelector(".chat-textarea", { timeout: 10_000 });
    await page.type(".chat-textarea", "hello from bosh");
    await page.press("Enter");
    const answer = await romeo.waitFor((s) =>
      s.is("message") && s.getChildText("body") === "hello from bosh"
    );
    assert.equal(answer.attrs.from, jid);
    await page.screenshot(`${artifacts}/browser_bosh_chat.png`);

    // She sends him a picture (the screenshot just taken) with converse's upload button.
    const picture = `${artifacts}/browser_bosh_chat.png`;
    await page.setFiles("input.fileupload", [picture]);
    const link = await romeo.waitFor(
      (s) => s.is("message") && /\/file_share\//.test(s.getChildText("body") ?? ""),
      30_000,
    );
    const url = link.getChildText("body") as string;
    assert.ok(url.startsWith(`http://127.0.0.1:${httpPort}/file_share/`), url);
    const got = new Uint8Array(await (await fetch(url)).arrayBuffer());
    assert.deepEqual(got, await Deno.readFile(picture), "romeo downloads the same bytes");
    // The browser shows it: it fetched the picture back from Cadence.
    await page.waitFor(
      (u: string) =>
        [...Array.from(document.querySelectorAll("img"))].some((i) =>
          i.src === u && i.naturalWidth > 0
        ),
      { timeout: 20_000 },
      url,
    );
    await page.screenshot(`${artifacts}/browser_bosh_upload.png`);
    console.log(`screenshots: ${artifacts}/browser_bosh_{chat,upload}.png`);
  } finally {
    await romeo?.stop();
    await browser.close();
    await site.close();
    await t.stop();
  }
});
