/**
 * A headless Chromium for end-to-end tests, driven over the DevTools protocol
 * (a small client on Deno's WebSocket: no npm dependency), and the converse.js
 * web client's dist files served from a loopback `Deno.serve`.
 *
 * Chromium is Debian's `chromium` package (`/usr/lib/chromium/chromium`, or
 * `$CHROMIUM`); it runs as root with `--no-sandbox`, in a temporary profile
 * that {@linkcode Browser.close} removes along with the process.
 *
 * @example
 * ```ts
 * if (!await browserReady()) return;
 * const site = await serveConverse({ websocket_url: "ws://127.0.0.1:5280/xmpp-websocket" });
 * await using b = await launchBrowser();
 * const page = await b.open(site.url);
 * await page.waitFor(() => document.querySelector("#converse-login-jid"));
 * await page.type("#converse-login-jid", "juliet@localhost");
 * await page.screenshot("/tmp/login.png");
 * await site.close();
 * ```
 */

/** The converse.js release the tests load (npm package `converse.js`). */
export const CONVERSE_VERSION = "14.0.0";

const CANDIDATES = [
  "/usr/lib/chromium/chromium", // Debian's binary, without the wrapper script's flags
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
];

/** The Chromium executable: `$CHROMIUM`, else the first of the usual paths that exists. */
export async function chromiumPath(): Promise<string | undefined> {
  const env = Deno.env.get("CHROMIUM");
  for (const path of env ? [env] : CANDIDATES) {
    if (await Deno.stat(path).then((s) => s.isFile, () => false)) return path;
  }
  return undefined;
}

/**
 * Whether Chromium is installed. Without it, warns and returns false (the test
 * skips), but throws when `CI` is set.
 */
export async function browserReady(): Promise<boolean> {
  if (await chromiumPath()) return true;
  if (Deno.env.get("CI")) throw new Error("chromium is missing in CI");
  console.warn("skipped: chromium is not installed (apt-get install chromium)");
  return false;
}

export interface LaunchOptions {
  /** Viewport size (default 1280×800). */
  width?: number;
  height?: number;
  /** How long to wait for the DevTools endpoint (default 20 s). */
  timeout?: number;
}

/** A running headless Chromium. */
export interface Browser {
  /** Opens a new tab on `url` and waits for its load event. */
  open(url: string): Promise<Page>;
  /** Closes the browser, kills it if it lingers, removes its profile. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  /** The last lines Chromium wrote to stderr (for failure messages). */
  stderr(): string;
}

export interface WaitOptions {
  /** Milliseconds (default 15,000). */
  timeout?: number;
  /** Poll interval in milliseconds (default 100). */
  interval?: number;
}

/** One tab. Page functions run in the browser: they cannot close over test variables. */
export interface Page {
  /** Navigates and waits for the load event. */
  goto(url: string): Promise<void>;
  /**
   * Evaluates an expression, or calls a function with JSON-serializable
   * arguments, in the page; awaits promises; returns the JSON value.
   * A page exception rejects.
   */
  eval<T = unknown>(
    code: string | ((...args: never[]) => T | Promise<T>),
    ...args: unknown[]
  ): Promise<T>;
  /** Polls `eval(code, ...args)` until it is truthy; returns that value. Rejects after the timeout. */
  waitFor<T = unknown>(
    code: string | ((...args: never[]) => T | Promise<T>),
    options?: WaitOptions,
    ...args: unknown[]
  ): Promise<T>;
  /** Waits for `selector` to match an element (in the light DOM). */
  waitForSelector(selector: string, options?: WaitOptions): Promise<void>;
  /** Scrolls the element into view and clicks it (DOM `click()`). */
  click(selector: string): Promise<void>;
  /** Focuses the element, clears it, and inserts `text` as typed input (input events fire). */
  type(selector: string, text: string): Promise<void>;
  /** Sends a key press to the focused element, e.g. "Enter". */
  press(key: "Enter" | "Tab" | "Escape"): Promise<void>;
  /** Chooses files (paths on this machine) in a file input, as a user's file dialog would. */
  setFiles(selector: string, paths: string[]): Promise<void>;
  /**
   * Writes a PNG of the viewport (`fullPage`: the whole document) to `path`,
   * once finite CSS animations have ended (waits at most 3 s for them).
   */
  screenshot(path: string, options?: { fullPage?: boolean }): Promise<void>;
  /** Console messages and uncaught exceptions seen so far ("level: text"). */
  readonly console: string[];
  close(): Promise<void>;
}

interface Pending {
  resolve(v: Record<string, unknown>): void;
  reject(e: Error): void;
}

type Listener = (params: Record<string, unknown>, sessionId?: string) => void;

/** A DevTools-protocol connection (flat sessions). */
class Cdp {
  #ws: WebSocket;
  #id = 0;
  #pending = new Map<number, Pending>();
  #listeners = new Set<{ method: string; fn: Listener }>();
  #closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#closed = new Promise((resolve) => ws.addEventListener("close", () => resolve()));
    ws.addEventListener("message", (e) => {
      const msg = JSON.parse(e.data as string);
      if (typeof msg.id === "number") {
        const p = this.#pending.get(msg.id);
        if (!p) return;
        this.#pending.delete(msg.id);
        if (msg.error) p.reject(new Error(`CDP: ${msg.error.message} ${msg.error.data ?? ""}`));
        else p.resolve(msg.result ?? {});
      } else if (msg.method) {
        for (const l of [...this.#listeners]) {
          if (l.method === msg.method) l.fn(msg.params ?? {}, msg.sessionId);
        }
      }
    });
    ws.addEventListener("close", () => {
      for (const p of this.#pending.values()) p.reject(new Error("CDP: connection closed"));
      this.#pending.clear();
    });
  }

  static connect(url: string): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.addEventListener("open", () => resolve(new Cdp(ws)), { once: true });
      ws.addEventListener("error", (e) => reject(new Error(`CDP: ${(e as ErrorEvent).message}`)), {
        once: true,
      });
    });
  }

  send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error("CDP: connection closed"));
    }
    const id = ++this.#id;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ id, method, params, sessionId }));
    });
  }

  on(method: string, fn: Listener): () => void {
    const l = { method, fn };
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  async close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    this.#ws.close();
    await this.#closed;
  }
}

/**
 * The little of the page's DOM the helpers' page functions use (this project
 * type-checks without the "dom" lib). Tests can declare it the same way:
 * `declare const document: PageDocument;`
 */
export interface PageDocument {
  querySelector(selector: string): PageElement | null;
  activeElement: unknown;
  title: string;
}
export interface PageElement {
  closest(selector: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
  scrollIntoView(options?: { block?: string }): void;
  click(): void;
  focus(): void;
  select?(): void;
  textContent: string | null;
}
declare const document: PageDocument;

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Rejects with `message` after `ms` unless `p` settles first (the timer is always cleared). */
async function within<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function callExpression(code: string | ((...args: never[]) => unknown), args: unknown[]): string {
  if (typeof code === "string") return code;
  return `(${code.toString()})(...${JSON.stringify(args)})`;
}

/**
 * Starts headless Chromium on a temporary profile. Call {@linkcode Browser.close}
 * (or use `await using`) in a `finally`: it always kills the process and
 * removes the profile. A failed launch cleans up before it rejects.
 */
export async function launchBrowser(options: LaunchOptions = {}): Promise<Browser> {
  const exe = await chromiumPath();
  if (!exe) throw new Error("chromium is not installed (apt-get install chromium)");
  const width = options.width ?? 1280, height = options.height ?? 800;
  const profile = await Deno.makeTempDir({ prefix: "cadence-chromium-" });
  const child = new Deno.Command(exe, {
    args: [
      "--headless=new",
      "--no-sandbox", // root in containers
      "--disable-gpu",
      "--disable-dev-shm-usage", // small /dev/shm in containers
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-extensions",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--mute-audio",
      "--hide-scrollbars",
      `--window-size=${width},${height}`,
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0", // a free port, written to <profile>/DevToolsActivePort
      "about:blank",
    ],
    // Crashpad's database and dconf go to $XDG_CONFIG_HOME: keep them in the profile, not ~/.config.
    env: { XDG_CONFIG_HOME: `${profile}/xdg`, XDG_CACHE_HOME: `${profile}/xdg` },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();

  // Drain stderr (a full pipe would stall Chromium), keeping the tail for errors.
  let tail = "";
  const reader = child.stderr.getReader();
  const drained = (async () => {
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      tail = (tail + dec.decode(value, { stream: true })).slice(-8000);
    }
  })().catch(() => {});
  const status = child.status;
  let exited = false;
  status.then(() => exited = true);
  // If the test process exits without close(), the browser must not outlive it.
  const onUnload = () => {
    try {
      if (!exited) child.kill("SIGKILL");
    } catch { /* already gone */ }
    try {
      Deno.removeSync(profile, { recursive: true });
    } catch { /* best effort: a helper may still be writing */ }
  };
  globalThis.addEventListener("unload", onUnload);

  let cdp: Cdp | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    closing ??= (async () => {
      // Politely first (flushes the profile), then SIGKILL: the helper processes
      // (zygotes, renderers, crashpad) exit with the browser process.
      if (cdp && !exited) {
        await within(cdp.send("Browser.close"), 3000, "").catch(() => {});
      }
      if (!exited) {
        await within(status, cdp ? 3000 : 0, "").catch(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* already gone */ }
        });
      }
      await status;
      // (A WebSocket close waits for the peer's close frame: only now is that prompt.)
      await within(cdp?.close() ?? Promise.resolve(), 1000, "").catch(() => {});
      globalThis.removeEventListener("unload", onUnload);
      // An orphaned helper may hold stderr open a little longer.
      await within(drained, 2000, "").catch(() => reader.cancel().catch(() => {}));
      // Chromium's helpers may still be writing to the profile for a moment.
      for (let i = 0;; i++) {
        try {
          await Deno.remove(profile, { recursive: true });
          break;
        } catch (e) {
          if (e instanceof Deno.errors.NotFound) break;
          if (i >= 20) throw e;
          await delay(100);
        }
      }
    })();

  try {
    const deadline = Date.now() + (options.timeout ?? 20_000);
    let wsUrl: string | undefined;
    while (!wsUrl) {
      if (exited) throw new Error(`chromium exited at start:\n${tail}`);
      if (Date.now() > deadline) throw new Error(`chromium did not start:\n${tail}`);
      const file = await Deno.readTextFile(`${profile}/DevToolsActivePort`).catch(() => "");
      const [port, path] = file.split("\n");
      if (port && path) wsUrl = `ws://127.0.0.1:${port.trim()}${path.trim()}`;
      else await delay(50);
    }
    cdp = await Cdp.connect(wsUrl);
  } catch (e) {
    await close();
    throw e;
  }
  const conn = cdp;

  return {
    stderr: () => tail,
    close,
    [Symbol.asyncDispose]: close,
    async open(url: string): Promise<Page> {
      const { targetId } = await conn.send("Target.createTarget", { url: "about:blank" });
      const { sessionId } = await conn.send("Target.attachToTarget", { targetId, flatten: true });
      const page = makePage(conn, targetId as string, sessionId as string);
      await page.init();
      await page.goto(url);
      return page;
    },
  };
}

function makePage(cdp: Cdp, targetId: string, sessionId: string): Page & { init(): Promise<void> } {
  const send = (method: string, params: Record<string, unknown> = {}) =>
    cdp.send(method, params, sessionId);
  const console: string[] = [];
  cdp.on("Runtime.consoleAPICalled", (p, s) => {
    if (s !== sessionId) return;
    const args = (p.args as { value?: unknown; description?: string }[] | undefined) ?? [];
    console.push(`${p.type}: ${args.map((a) => a.value ?? a.description ?? "").join(" ")}`);
    if (console.length > 500) console.shift();
  });
  cdp.on("Runtime.exceptionThrown", (p, s) => {
    if (s !== sessionId) return;
    const d = p.exceptionDetails as { text?: string; exception?: { description?: string } };
    console.push(`exception: ${d.exception?.description ?? d.text}`);
  });

  const evaluate = async <T>(code: string | ((...args: never[]) => unknown), args: unknown[]) => {
    const r = await send("Runtime.evaluate", {
      expression: callExpression(code, args),
      awaitPromise: true,
      returnByValue: true,
      userGesture: true,
    });
    const ex = r.exceptionDetails as
      | { text?: string; exception?: { description?: string } }
      | undefined;
    if (ex) throw new Error(`page: ${ex.exception?.description ?? ex.text}`);
    return (r.result as { value?: T }).value as T;
  };

  const waitFor = async <T>(
    code: string | ((...args: never[]) => T | Promise<T>),
    options: WaitOptions = {},
    ...args: unknown[]
  ): Promise<T> => {
    const timeout = options.timeout ?? 15_000, interval = options.interval ?? 100;
    const deadline = Date.now() + timeout;
    let last: unknown;
    for (;;) {
      try {
        const v = await evaluate<T>(code, args);
        if (v) return v;
        last = undefined;
      } catch (e) {
        last = e; // e.g. during a navigation
      }
      if (Date.now() > deadline) {
        const what = typeof code === "string" ? code : code.toString();
        throw new Error(
          `waitFor timed out after ${timeout} ms: ${what.slice(0, 200)}` +
            (last ? `\nlast error: ${last}` : "") +
            `\npage console:\n${console.slice(-20).join("\n")}`,
        );
      }
      await delay(interval);
    }
  };

  const page = {
    console,
    async init() {
      await send("Page.enable");
      await send("Runtime.enable");
    },
    async goto(url: string) {
      let off = () => {};
      const loaded = new Promise<void>((resolve) => {
        off = cdp.on("Page.loadEventFired", (_p, s) => s === sessionId && resolve());
      });
      try {
        const r = await send("Page.navigate", { url });
        if (r.errorText) throw new Error(`navigation to ${url} failed: ${r.errorText}`);
        await within(loaded, 30_000, `no load event from ${url}`);
      } finally {
        off();
      }
    },
    eval<T = unknown>(code: string | ((...args: never[]) => T | Promise<T>), ...args: unknown[]) {
      return evaluate<T>(code, args);
    },
    waitFor,
    async waitForSelector(selector: string, options?: WaitOptions) {
      await waitFor((s: string) => document.querySelector(s) !== null, options, selector);
    },
    async click(selector: string) {
      await waitFor(
        (s: string) => {
          const el = document.querySelector(s);
          if (!el) return false;
          el.scrollIntoView({ block: "center" });
          el.click();
          return true;
        },
        { timeout: 5000 },
        selector,
      );
    },
    async type(selector: string, text: string) {
      await waitFor(
        (s: string) => {
          const el = document.querySelector(s);
          if (!el) return false;
          el.focus();
          el.select?.();
          return document.activeElement === el;
        },
        { timeout: 5000 },
        selector,
      );
      await send("Input.insertText", { text });
    },
    async press(key: "Enter" | "Tab" | "Escape") {
      const codes = { Enter: 13, Tab: 9, Escape: 27 };
      const base = { key, code: key, windowsVirtualKeyCode: codes[key] };
      await send("Input.dispatchKeyEvent", {
        type: "keyDown",
        ...base,
        ...(key === "Enter" ? { text: "\r" } : {}),
      });
      await send("Input.dispatchKeyEvent", { type: "keyUp", ...base });
    },
    async setFiles(selector: string, paths: string[]) {
      await waitFor((s: string) => document.querySelector(s) !== null, { timeout: 5000 }, selector);
      const r = await send("Runtime.evaluate", {
        expression: `document.querySelector(${JSON.stringify(selector)})`,
      });
      const objectId = (r.result as { objectId?: string }).objectId;
      if (!objectId) throw new Error(`no element ${selector}`);
      await send("DOM.setFileInputFiles", { files: paths, objectId });
    },
    async screenshot(path: string, options: { fullPage?: boolean } = {}) {
      // Let finite CSS animations (converse fades its panels in) end, for at most 3 s.
      await waitFor(
        "document.getAnimations().every((a) => a.playState !== 'running' || " +
          "a.effect?.getTiming().iterations === Infinity)",
        { timeout: 3000 },
      ).catch(() => {});
      const r = await send("Page.captureScreenshot", {
        format: "png",
        captureBeyondViewport: options.fullPage ?? false,
      });
      const bin = atob(r.data as string);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      await Deno.writeFile(path, bytes);
    },
    async close() {
      await cdp.send("Target.closeTarget", { targetId }).catch(() => {});
    },
  };
  return page;
}

function tempRoot(): string {
  return Deno.env.get("TMPDIR") ?? "/tmp";
}

/**
 * A directory holding converse.js's `dist/` files (converse.min.js,
 * converse.min.css, chunkjs/, locales, webfonts…), version
 * {@linkcode CONVERSE_VERSION}. `$CONVERSE_DIST` overrides it; otherwise the
 * package is fetched once with `npm pack` (npm's registry configuration and
 * integrity check apply) into a cache under the system temp dir, shared by
 * concurrent test processes.
 */
export async function converseDir(version = CONVERSE_VERSION): Promise<string> {
  const override = Deno.env.get("CONVERSE_DIST");
  if (override) return override;
  const dist = `${tempRoot()}/cadence-converse-${version}-dist`;
  const ok = () => Deno.stat(`${dist}/converse.min.js`).then(() => true, () => false);
  if (await ok()) return dist;
  const work = await Deno.makeTempDir({ dir: tempRoot(), prefix: "cadence-converse-fetch-" });
  try {
    const pack = await new Deno.Command("npm", {
      args: ["pack", `converse.js@${version}`, "--pack-destination", work, "--silent"],
      cwd: work,
      stdout: "piped",
      stderr: "piped",
    }).output().catch((e) => {
      throw new Error(`npm is needed to fetch converse.js: ${e}`);
    });
    const dec = new TextDecoder();
    if (!pack.success) throw new Error(`npm pack converse.js failed:\n${dec.decode(pack.stderr)}`);
    const tgz = dec.decode(pack.stdout).trim().split("\n").pop()!;
    const tar = await new Deno.Command("tar", {
      args: ["xzf", `${work}/${tgz}`, "-C", work],
      stderr: "piped",
    }).output();
    if (!tar.success) throw new Error(`tar failed:\n${dec.decode(tar.stderr)}`);
    try {
      await Deno.rename(`${work}/package/dist`, dist); // atomic: readers never see half a tree
    } catch (e) {
      if (!await ok()) throw e; // lost a race to another process: theirs will do
    }
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  if (!await ok()) throw new Error(`converse.js dist is incomplete in ${dist}`);
  return dist;
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  map: "application/json",
  wasm: "application/wasm",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  woff: "font/woff",
  woff2: "font/woff2",
  ttf: "font/ttf",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
};

export interface ConverseSite {
  /** The page's URL, e.g. http://127.0.0.1:41234/ */
  url: string;
  /** The HTML served at `/`. */
  html: string;
  close(): Promise<void>;
}

/**
 * Serves a page running converse.js on 127.0.0.1 (a free port): `/` calls
 * `converse.initialize(options)`, `/dist/*` are the files from
 * {@linkcode converseDir}. `options` must be JSON.
 */
export async function serveConverse(options: Record<string, unknown>): Promise<ConverseSite> {
  const dist = await converseDir();
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cadence converse.js test</title>
<link rel="stylesheet" href="/dist/converse.min.css">
<script type="module" src="/dist/converse.min.js"></script>
</head>
<body class="converse-fullscreen">
<script type="module">
converse.initialize(${JSON.stringify(options)});
</script>
</body>
</html>
`;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path === "/" || path === "/index.html") {
      return new Response(html, { headers: { "content-type": TYPES.html } });
    }
    if (!path.startsWith("/dist/") || path.split("/").includes("..")) {
      return new Response("not found", { status: 404 });
    }
    try {
      const body = await Deno.readFile(`${dist}/${path.slice("/dist/".length)}`);
      const ext = path.slice(path.lastIndexOf(".") + 1);
      return new Response(body, {
        headers: { "content-type": TYPES[ext] ?? "application/octet-stream" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    html,
    close: () => server.shutdown(),
  };
}

/**
 * Logs in from converse.js's login form, then waits (15 s) until `bound()`
 * — the server's view — names the resource it bound; returns that full JID.
 *
 * @example
 * ```ts
 * const jid = await converseLogin(page, "juliet@localhost", "pw", () =>
 *   [...t.server.sessions.full.keys()].find((j) => j.startsWith("juliet@localhost/")));
 * ```
 */
export async function converseLogin(
  page: Page,
  jid: string,
  password: string,
  bound: () => string | undefined,
): Promise<string> {
  await page.waitForSelector("#converse-login-jid", { timeout: 30_000 });
  await page.type("#converse-login-jid", jid);
  await page.type("#converse-login-password", password);
  await page.press("Enter");
  for (let i = 0; i < 150; i++) {
    const full = bound();
    if (full) return full;
    await delay(100);
  }
  throw new Error(`${jid} never bound a resource; page console: ${page.console.slice(-10)}`);
}
