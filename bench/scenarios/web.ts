/**
 * The web transports, on one fresh Cadence process per run (HTTP on its own
 * loopback port, websocket, bosh and an http_file_share component):
 *
 * - idle memory: N WebSocket sessions (logged in, bound, initial presence),
 *   then N BOSH sessions (the same, each holding one request open and
 *   re-issuing it when it returns, as a real BOSH client does); server RSS
 *   after a settle before and after each batch, KiB per session;
 * - routing: P pairs of WebSocket clients, each sender sending M chat
 *   messages with W in flight to its partner; then the same between P pairs
 *   of TCP clients on the same process; server CPU per message of each and
 *   their ratio;
 * - upload: a slot asked for over XMPP (TCP), a PUT of the file streamed
 *   from a generator with Content-Length, wall-time MB/s and the server's
 *   peak RSS (sampled every 20 ms) above its RSS before; the GET back, MB/s;
 *   VmHWM of the server process.
 *
 * Cadence only: the peers' web transports are not measured.
 * @module
 */
import { RawClient } from "../../tests/helpers/rawclient.ts";
import { BoshClient } from "../../tests/helpers/bosh.ts";
import { rssKiB } from "../proc.ts";
import { mib, type Row, row, seconds } from "../report.ts";
import { type ConfigOptions, freePort, SERVER_HOST, ServerProcess } from "../server_process.ts";
import {
  type AccountSetup,
  CADENCE_MODULES,
  cadenceConfig,
  numbered,
  type Template,
} from "../servers.ts";
import { runPool } from "../pool.ts";
import { request } from "node:http";

/** Pairs of the routing exchanges, and messages each sender keeps in flight. */
export const WEB_PAIRS = 20;
export const WEB_WINDOW = 10;
/** Concurrent logins while opening the idle sessions (under the 32 unauthenticated per address). */
const LOGIN_CONCURRENCY = 16;
const PASSWORD = "any";
const UPLOAD_HOST = "upload.localhost";
const FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
const STEP_TIMEOUT_MS = 30_000;
const EXCHANGE_TIMEOUT_MS = 60_000;
/** Messages per sender in the unmeasured warm-up exchanges. */
const WARM_MESSAGES = 20;
/** Seconds a BOSH request is held (`wait`); the client re-issues it when it returns. */
const BOSH_WAIT = 30;
/** Sessions of each kind opened and closed before the memory baseline, unmeasured. */
const WARM_SESSIONS = 10;
/** Size of the chunks the upload's body is generated in. */
const CHUNK = 1 << 20;

/** How the scenario was set up, for the report. */
export const WEB_SETUP = "one fresh Cadence process per run with websocket, bosh and an " +
  "http_file_share component (upload.localhost) on an HTTP port of 127.0.0.1, plaintext " +
  "passwords, PLAIN without TLS; idle: N WebSocket then N BOSH sessions (bound, presence; " +
  `BOSH hold=1 wait=${BOSH_WAIT}, one request always held), logged in ${LOGIN_CONCURRENCY} ` +
  `at a time after ${WARM_SESSIONS} warm-up sessions of each, RSS read after a settle ` +
  "(1 s with ≤ 256 KiB change); routing: P pairs, each sender sending M chat messages to " +
  "its partner's full JID with W in flight, over WebSocket then over TCP on the same " +
  `process, after ${WARM_MESSAGES} warm-up messages per pair each; upload: a slot over ` +
  `XMPP, a PUT streamed in ${CHUNK >> 20} MiB chunks with Content-Length (node:http), ` +
  "RSS of the server process sampled every 20 ms, then a GET of the whole file (fetch)";

/** The figures of one run. */
export interface WebRun {
  pairs: number;
  messages: number;
  window: number;
  wsDelivered: number;
  tcpDelivered: number;
  wsCpuUs: number;
  tcpCpuUs: number;
  sessions: number;
  wsOpened: number;
  boshOpened: number;
  wsOpenMs: number;
  boshOpenMs: number;
  rssBaseKiB: number;
  rssWsKiB: number;
  rssBoshKiB: number;
  wsKiBPerSession: number;
  boshKiBPerSession: number;
  /** BOSH held requests that came back with an error, or sessions the server ended, while held. */
  boshDropped: number;
  /** Held BOSH requests that came back (answered or at `wait`) and were re-issued while held. */
  boshReissued: number;
  rssAfterCloseKiB: number;
  uploadBytes: number;
  putMs: number;
  putMBps: number;
  getMs: number;
  getMBps: number;
  uploadCpuMs: number;
  rssBeforeUploadKiB: number;
  rssPeakUploadKiB: number;
  rssPeakDownloadKiB: number;
  hwmBeforeUploadKiB: number;
  hwmAfterKiB: number;
  exitCode: number;
  errors: string[];
  serverOutput: string;
}

/** The accounts of the web runs. */
export function webSetup(sessions: number): AccountSetup {
  return {
    accounts: [
      ...numbered("wss", WEB_PAIRS),
      ...numbered("wsr", WEB_PAIRS),
      ...numbered("tcs", WEB_PAIRS),
      ...numbered("tcr", WEB_PAIRS),
      ...numbered("wsi", sessions + WARM_SESSIONS),
      ...numbered("bi", sessions + WARM_SESSIONS),
      ...numbered("up", 1),
    ],
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts occurrences of a marker in a stream of text chunks, and wakes whoever waits for a count. */
export class Counter {
  count = 0;
  private tail = "";
  private waiters: { n: number; wake: () => void }[] = [];
  marker = "\u0000";

  /** Starts counting `marker` from zero. */
  reset(marker: string) {
    this.marker = marker;
    this.count = 0;
    this.tail = "";
  }

  feed(text: string) {
    const s = this.tail + text;
    let at = s.indexOf(this.marker);
    while (at !== -1) {
      this.count++;
      at = s.indexOf(this.marker, at + this.marker.length);
    }
    this.tail = s.slice(-(this.marker.length - 1));
    if (this.waiters.length) {
      const still = [];
      for (const w of this.waiters) this.count >= w.n ? w.wake() : still.push(w);
      this.waiters = still;
    }
  }

  /** Resolves when `n` have been counted, or after `ms`. */
  async atLeast(n: number, ms: number): Promise<void> {
    if (this.count >= n) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.waiters.push({ n, wake: resolve });
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
  }
}

/** One client of an exchange, whatever its transport. */
export interface Peer {
  counter: Counter;
  /** Sends stanzas (one WebSocket frame each, or one TCP write). */
  sendAll(stanzas: string[]): void;
  close(): Promise<void> | void;
}

/** An XMPP client on a WebSocket (RFC 7395), logged in with PLAIN. */
export class WsClient implements Peer {
  counter = new Counter();
  private frames: string[] = [];
  private waiting?: () => void;
  closed = false;
  jid = "";

  private constructor(readonly ws: WebSocket) {
    ws.onmessage = (e) => {
      const f = String(e.data);
      this.counter.feed(f);
      if (this.keep) this.frames.push(f);
      this.waiting?.();
    };
    ws.onclose = () => {
      this.closed = true;
      this.waiting?.();
    };
  }
  /** Whether frames are kept for {@link frame} (during login only). */
  private keep = true;

  static async connect(url: string): Promise<WsClient> {
    const ws = new WebSocket(url, "xmpp");
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (e) => reject(new Error(`WebSocket did not open: ${(e as ErrorEvent).message}`));
    });
    return new WsClient(ws);
  }

  /** Waits for (and consumes) the first frame matching `re`. */
  async frame(re: RegExp, ms = STEP_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex((f) => re.test(f));
      if (i >= 0) return this.frames.splice(0, i + 1)[i];
      if (this.closed) throw new Error(`WebSocket closed before ${re}: ${this.frames.join("")}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}: ${this.frames.join("")}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Opens the stream, PLAIN, restart, bind, initial presence. */
  async login(user: string, resource: string): Promise<void> {
    const open = `<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`;
    this.ws.send(open);
    await this.frame(/^<stream:features/);
    this.ws.send(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
        btoa(`\0${user}\0${PASSWORD}`)
      }</auth>`,
    );
    await this.frame(/^<success /);
    this.ws.send(open);
    await this.frame(/^<stream:features/);
    this.ws.send(
      "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:" +
        `xmpp-bind'><resource>${resource}</resource></bind></iq>`,
    );
    this.jid = /<jid>([^<]+)<\/jid>/.exec(await this.frame(/id="b1"/))?.[1] ?? "";
    this.ws.send("<presence xmlns='jabber:client'/>");
    this.keep = false;
    this.frames = [];
  }

  sendAll(stanzas: string[]) {
    for (const s of stanzas) this.ws.send(s);
  }

  /** Ends the stream with `<close/>` and waits (briefly) for the WebSocket to close. */
  async close() {
    if (this.closed) return;
    try {
      this.ws.send(`<close xmlns='${FRAMING}'/>`);
    } catch { /* closing already */ }
    for (let i = 0; i < 100 && !this.closed; i++) await sleep(20);
    if (!this.closed) this.ws.close();
  }
}

/** A TCP client (RawClient) with a counter on what it receives. */
class TcpPeer implements Peer {
  counter = new Counter();
  private constructor(readonly c: RawClient) {
    const decoder = new TextDecoder();
    c.socket.on("data", (d: Uint8Array) => {
      this.counter.feed(decoder.decode(d, { stream: true }));
      c.clear(); // (RawClient keeps everything; nothing here needs it)
    });
  }

  static async login(port: number, user: string, resource: string): Promise<TcpPeer> {
    const c = await RawClient.connect(port, SERVER_HOST);
    await c.login(user, PASSWORD, resource);
    c.send("<presence/>");
    return new TcpPeer(c);
  }

  sendAll(stanzas: string[]) {
    this.c.send(stanzas.join(""));
  }

  close() {
    this.c.send("</stream:stream>");
    this.c.close();
  }
}

/** A BOSH session holding one request open, re-issued whenever it returns, until stopped. */
export class HeldBosh {
  readonly c: BoshClient;
  private stopped = false;
  private loop?: Promise<void>;
  /** Held requests that failed or were answered with a terminate. */
  dropped = 0;
  /**
   * Held requests re-issued because the one before came back (at `wait`, or answered),
   * not counting the first: the request carrying the initial presence is answered.
   */
  reissued = 0;
  private answers = 0;

  constructor(url: string) {
    this.c = new BoshClient(url);
  }

  async open(user: string): Promise<void> {
    await this.c.create("localhost", BOSH_WAIT, 1);
    await this.c.login(user, PASSWORD);
    // Initial presence; its answer may be held until there is something to say (or `wait`).
    this.loop = this.hold(this.c.send("<presence xmlns='jabber:client'/>"));
  }

  private async hold(first: Promise<string>): Promise<void> {
    let pending = first;
    for (;;) {
      let text;
      try {
        text = await pending;
      } catch {
        if (!this.stopped) this.dropped++;
        return;
      }
      if (this.stopped) return;
      if (/type=['"]terminate['"]/.test(text)) {
        this.dropped++;
        return;
      }
      if (this.answers++ > 0) this.reissued++;
      pending = this.c.send();
    }
  }

  /** Terminates the session (which answers the held request too). */
  async close(): Promise<void> {
    this.stopped = true;
    await this.c.send("<presence type='unavailable' xmlns='jabber:client'/>", {
      type: "terminate",
    }).catch(() => {});
    await this.loop;
  }
}

/** Each sender sends `messages` to its partner, `window` in flight; the deliveries counted. */
async function exchange(
  senders: Peer[],
  receivers: Peer[],
  to: string[],
  messages: number,
  window: number,
  tag: string,
): Promise<number> {
  for (const r of receivers) r.counter.reset(`<body>${tag}`);
  await Promise.all(senders.map(async (s, i) => {
    for (let sent = 0; sent < messages;) {
      const batch = Math.min(window, messages - sent);
      const stanzas = [];
      for (let k = 0; k < batch; k++) {
        stanzas.push(
          `<message xmlns='jabber:client' to='${to[i]}' type='chat'><body>${tag}${
            sent + k
          } routed over the web</body></message>`,
        );
      }
      s.sendAll(stanzas);
      sent += batch;
      await receivers[i].counter.atLeast(sent, EXCHANGE_TIMEOUT_MS);
      if (receivers[i].counter.count < sent) return; // (counted as not delivered)
    }
  }));
  return receivers.reduce((n, r) => n + r.counter.count, 0);
}

/** VmHWM (peak resident set) of `pid`, KiB. */
async function hwmKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? NaN);
}

/** Waits until the server's RSS moves by at most 256 KiB over 1 s (at most 15 s); returns it. */
export async function settledRss(pid: number): Promise<number> {
  let rss = await rssKiB(pid);
  for (let i = 0; i < 15; i++) {
    await sleep(1000);
    const now = await rssKiB(pid);
    const quiet = Math.abs(now - rss) <= 256;
    rss = now;
    if (quiet) break;
  }
  return rss;
}

/** Samples the RSS of `pid` every 20 ms until stopped; the peak. */
function sampleRss(pid: number): { stop: () => Promise<number> } {
  let peak = 0, running = true;
  const done = (async () => {
    while (running) {
      peak = Math.max(peak, await rssKiB(pid).catch(() => 0));
      await sleep(20);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return peak;
    },
  };
}

/**
 * PUTs `size` generated bytes (chunk by chunk, never held whole) with a
 * Content-Length, through node:http (fetch sends a stream body chunked,
 * without the Content-Length an upload slot requires); the status and text.
 */
function putGenerated(
  url: string,
  size: number,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: "PUT",
      headers: { ...headers, "content-length": String(size) },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => text += d);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    let sent = 0;
    const write = () => {
      while (sent < size) {
        const n = Math.min(CHUNK, size - sent);
        const chunk = new Uint8Array(n);
        for (let i = 0; i < n; i += 4096) chunk[i] = (sent + i) / 4096 & 0xff;
        sent += n;
        if (!req.write(chunk)) {
          req.once("drain", write);
          return;
        }
      }
      req.end();
    };
    write();
  });
}

/** Asks for a slot over XMPP; its PUT/GET URL and Authorization header. */
async function slot(c: RawClient, size: number): Promise<{ url: string; auth: string }> {
  c.clear();
  c.send(
    `<iq type='get' id='slot1' to='${UPLOAD_HOST}'><request xmlns='urn:xmpp:http:upload:0' ` +
      `filename='bench.bin' size='${size}' content-type='application/octet-stream'/></iq>`,
  );
  const reply = (await c.waitFor(/<iq[^>]*id=["']slot1["'][^]*?<\/iq>/, STEP_TIMEOUT_MS))[0];
  const url = /<put url=["']([^"']+)["']/.exec(reply)?.[1];
  const auth = /<header name=["']Authorization["']>([^<]+)<\/header>/.exec(reply)?.[1];
  if (!url || !auth) throw new Error(`no upload slot: ${reply}`);
  return { url: url.replace(/&amp;/g, "&"), auth };
}

/** Opens `n` sessions `concurrency` at a time; throws with the first errors if any failed. */
async function openAll<T>(
  n: number,
  open: (i: number) => Promise<T>,
  into: T[],
): Promise<{ ms: number; failed: number; errors: string[] }> {
  const r = await runPool(n, LOGIN_CONCURRENCY, 300_000, async (i) => {
    into.push(await open(i));
  });
  return { ms: r.elapsedMs, failed: r.failed, errors: r.errors };
}

/** Cadence's configuration for a web run: HTTP on `httpPort`, uploads up to `uploadBytes`. */
export function webConfig(httpPort: number, uploadBytes: number): ConfigOptions {
  return cadenceConfig("plain", {
    modules_enabled: [...CADENCE_MODULES, "websocket", "bosh"],
    http_ports: [httpPort],
    http_interfaces: [SERVER_HOST],
    https_ports: [],
    http_external_url: `http://${SERVER_HOST}:${httpPort}`,
    http_max_content_size: uploadBytes + (1 << 20),
    components: {
      [UPLOAD_HOST]: {
        module: "http_file_share",
        http_file_share_size_limit: uploadBytes,
        http_file_share_daily_quota: uploadBytes * 10,
      },
    },
  });
}

/** One measured run on a fresh server whose data is a copy of `template`. */
export async function runWeb(
  template: Template,
  sessions: number,
  messages: number,
  uploadBytes: number,
): Promise<WebRun> {
  const httpPort = await freePort();
  const base = `http://${SERVER_HOST}:${httpPort}`;
  const server = await ServerProcess.start(webConfig(httpPort, uploadBytes), template.dir);
  const pid = server.pid;
  const errors: string[] = [];
  const ws: WsClient[] = [];
  const bosh: HeldBosh[] = [];
  const peers: Peer[] = [];
  const wsUrl = `ws://${SERVER_HOST}:${httpPort}/xmpp-websocket`;
  const boshUrl = `${base}/http-bind`;
  try {
    // Idle memory. A few sessions of each kind first, opened and closed, so the code paths
    // and the buffers they first need are not counted per session.
    for (let i = 0; i < WARM_SESSIONS; i++) {
      const w = await WsClient.connect(wsUrl);
      await w.login(`wsi${sessions + i}`, "warm");
      await w.close();
      const b = new HeldBosh(boshUrl);
      await b.open(`bi${sessions + i}`);
      await b.close();
    }
    const rssBaseKiB = await settledRss(pid);
    const wsOpen = await openAll(sessions, async (i) => {
      const w = await WsClient.connect(wsUrl);
      await w.login(`wsi${i}`, "idle");
      return w;
    }, ws);
    const rssWsKiB = await settledRss(pid);
    const boshOpen = await openAll(sessions, async (i) => {
      const b = new HeldBosh(boshUrl);
      await b.open(`bi${i}`);
      return b;
    }, bosh);
    const rssBoshKiB = await settledRss(pid);
    const boshDropped = bosh.reduce((n, b) => n + b.dropped, 0) +
      ws.filter((w) => w.closed).length;
    const boshReissued = bosh.reduce((n, b) => n + b.reissued, 0);
    for (const [what, o] of [["WebSocket", wsOpen], ["BOSH", boshOpen]] as const) {
      if (o.failed) errors.push(`${o.failed} ${what} sessions failed: ${o.errors.slice(0, 3)}`);
    }
    await Promise.all([...ws.map((w) => w.close()), ...bosh.map((b) => b.close())]);
    const rssAfterCloseKiB = await settledRss(pid);

    // Routing: WebSocket pairs, then TCP pairs, on the same process.
    const names = Array.from({ length: WEB_PAIRS }, (_, i) => i);
    const wsOne = async (user: string) => {
      const w = await WsClient.connect(wsUrl);
      await w.login(user, "bench");
      peers.push(w);
      return w;
    };
    const tcpOne = async (user: string) => {
      const t = await TcpPeer.login(server.port, user, "bench");
      peers.push(t);
      return t;
    };
    const wsSenders = await Promise.all(names.map((i) => wsOne(`wss${i}`)));
    const wsReceivers = await Promise.all(names.map((i) => wsOne(`wsr${i}`)));
    const tcpSenders = await Promise.all(names.map((i) => tcpOne(`tcs${i}`)));
    const tcpReceivers = await Promise.all(names.map((i) => tcpOne(`tcr${i}`)));
    const wsTo = names.map((i) => `wsr${i}@localhost/bench`);
    const tcpTo = names.map((i) => `tcr${i}@localhost/bench`);
    await exchange(wsSenders, wsReceivers, wsTo, WARM_MESSAGES, WEB_WINDOW, "w");
    await exchange(tcpSenders, tcpReceivers, tcpTo, WARM_MESSAGES, WEB_WINDOW, "v");
    const c0 = await server.cpuMs();
    const wsDelivered = await exchange(wsSenders, wsReceivers, wsTo, messages, WEB_WINDOW, "m");
    const c1 = await server.cpuMs();
    const tcpDelivered = await exchange(
      tcpSenders,
      tcpReceivers,
      tcpTo,
      messages,
      WEB_WINDOW,
      "n",
    );
    const c2 = await server.cpuMs();
    const expected = WEB_PAIRS * messages;
    if (wsDelivered < expected) errors.push(`${expected - wsDelivered} WebSocket not delivered`);
    if (tcpDelivered < expected) errors.push(`${expected - tcpDelivered} TCP not delivered`);
    await Promise.all(peers.splice(0).map((p) => p.close()));

    // Upload and download.
    const uploader = await RawClient.connect(server.port, SERVER_HOST);
    await uploader.login("up0", PASSWORD, "bench");
    const { url, auth } = await slot(uploader, uploadBytes);
    const rssBeforeUploadKiB = await settledRss(pid);
    const hwmBeforeUploadKiB = await hwmKiB(pid);
    const u0 = await server.cpuMs();
    let sampler = sampleRss(pid);
    const t0 = performance.now();
    const put = await putGenerated(url, uploadBytes, {
      authorization: auth,
      "content-type": "application/octet-stream",
    });
    const putMs = performance.now() - t0;
    const rssPeakUploadKiB = await sampler.stop();
    const uploadCpuMs = await server.cpuMs() - u0;
    if (put.status !== 201) errors.push(`PUT answered ${put.status} ${put.text.trim()}`);
    sampler = sampleRss(pid);
    const t1 = performance.now();
    const got = await fetch(url);
    let received = 0;
    for await (const chunk of got.body ?? []) received += chunk.byteLength;
    const getMs = performance.now() - t1;
    const rssPeakDownloadKiB = await sampler.stop();
    if (got.status !== 200 || received !== uploadBytes) {
      errors.push(`GET answered ${got.status} with ${received} of ${uploadBytes} bytes`);
    }
    const hwmAfterKiB = await hwmKiB(pid);
    uploader.close();

    return {
      pairs: WEB_PAIRS,
      messages,
      window: WEB_WINDOW,
      wsDelivered,
      tcpDelivered,
      wsCpuUs: (c1 - c0) * 1000 / Math.max(1, wsDelivered),
      tcpCpuUs: (c2 - c1) * 1000 / Math.max(1, tcpDelivered),
      sessions,
      wsOpened: ws.length,
      boshOpened: bosh.length,
      wsOpenMs: wsOpen.ms,
      boshOpenMs: boshOpen.ms,
      rssBaseKiB,
      rssWsKiB,
      rssBoshKiB,
      wsKiBPerSession: ws.length ? (rssWsKiB - rssBaseKiB) / ws.length : NaN,
      boshKiBPerSession: bosh.length ? (rssBoshKiB - rssWsKiB) / bosh.length : NaN,
      boshDropped,
      boshReissued,
      rssAfterCloseKiB,
      uploadBytes,
      putMs,
      putMBps: uploadBytes / 1e6 / (putMs / 1000),
      getMs,
      getMBps: received / 1e6 / (getMs / 1000),
      uploadCpuMs,
      rssBeforeUploadKiB,
      rssPeakUploadKiB,
      rssPeakDownloadKiB,
      hwmBeforeUploadKiB,
      hwmAfterKiB,
      exitCode: await server.stop(),
      errors,
      serverOutput: server.output().slice(-2000),
    };
  } catch (e) {
    for (const w of ws) w.ws.close();
    for (const p of peers) await Promise.resolve(p.close()).catch(() => {});
    await server.stop();
    throw new Error(`${(e as Error).message}\nserver output:\n${server.output()}`);
  }
}

/** One log line for a finished run. */
export function describeWebRun(r: WebRun): string {
  const said = r.serverOutput.trim();
  return `routing ${r.wsDelivered}/${r.pairs * r.messages} over WebSocket at ` +
    `${r.wsCpuUs.toFixed(1)} µs/msg, ${r.tcpDelivered} over TCP at ${r.tcpCpuUs.toFixed(1)} ` +
    `µs/msg; idle: ${r.wsOpened}/${r.sessions} WebSocket in ${seconds(r.wsOpenMs)}, ` +
    `${r.boshOpened}/${r.sessions} BOSH in ${seconds(r.boshOpenMs)}, RSS ${mib(r.rssBaseKiB)} → ` +
    `${mib(r.rssWsKiB)} → ${mib(r.rssBoshKiB)} = ${r.wsKiBPerSession.toFixed(1)} KiB/WebSocket, ` +
    `${
      r.boshKiBPerSession.toFixed(1)
    } KiB/BOSH session, ${r.boshDropped} dropped, ${r.boshReissued} held requests ` +
    `re-issued, RSS after ` +
    `close ${mib(r.rssAfterCloseKiB)}; upload ${(r.uploadBytes / 1e6).toFixed(0)} MB: PUT ` +
    `${seconds(r.putMs)} = ${r.putMBps.toFixed(1)} MB/s (server CPU ${seconds(r.uploadCpuMs)}), ` +
    `RSS ${mib(r.rssBeforeUploadKiB)} → peak ${mib(r.rssPeakUploadKiB)}, GET ` +
    `${seconds(r.getMs)} = ${r.getMBps.toFixed(1)} MB/s (peak ${mib(r.rssPeakDownloadKiB)}), ` +
    `VmHWM ${mib(r.hwmBeforeUploadKiB)} → ${mib(r.hwmAfterKiB)}; exit ${r.exitCode}` +
    (r.errors.length ? `; ${r.errors.join("; ")}` : "") +
    (said ? `\n  server output (tail):\n    ${said.split("\n").slice(-10).join("\n    ")}` : "");
}

/** The table rows of the web runs. */
export function webRows(runs: WebRun[]): Row[] {
  const route = `web route P=${WEB_PAIRS} W=${WEB_WINDOW}`;
  const idle = `web idle N=${runs[0]?.sessions ?? 0}`;
  const up = `web upload ${((runs[0]?.uploadBytes ?? 0) / 1e6).toFixed(0)} MB`;
  const v = (f: (r: WebRun) => number) => runs.map(f);
  return [
    row(route, "WebSocket server CPU µs/message", v((r) => r.wsCpuUs), 1),
    row(route, "TCP, same run, server CPU µs/message", v((r) => r.tcpCpuUs), 1),
    row(route, "WebSocket ÷ TCP CPU per message", v((r) => r.wsCpuUs / r.tcpCpuUs), 2),
    row(
      route,
      "messages not delivered",
      v((r) => 2 * r.pairs * r.messages - r.wsDelivered - r.tcpDelivered),
      0,
    ),
    row(idle, "KiB per idle WebSocket session", v((r) => r.wsKiBPerSession), 1),
    row(idle, "KiB per idle BOSH session (1 held request)", v((r) => r.boshKiBPerSession), 1),
    row(idle, "RSS MiB before opening", v((r) => r.rssBaseKiB / 1024), 0),
    row(idle, "RSS MiB, both kinds held", v((r) => r.rssBoshKiB / 1024), 0),
    row(idle, "RSS MiB after all closed", v((r) => r.rssAfterCloseKiB / 1024), 0),
    row(
      idle,
      "sessions failed or dropped",
      v((r) => 2 * r.sessions - r.wsOpened - r.boshOpened + r.boshDropped),
      0,
    ),
    row(up, "PUT MB/s (wall)", v((r) => r.putMBps), 1),
    row(up, "GET MB/s (wall)", v((r) => r.getMBps), 1),
    row(up, "server CPU s for the PUT", v((r) => r.uploadCpuMs / 1000), 2),
    row(
      up,
      "peak RSS MiB above before, PUT",
      v((r) => (r.rssPeakUploadKiB - r.rssBeforeUploadKiB) / 1024),
      1,
    ),
    row(
      up,
      "peak RSS MiB above before, GET",
      v((r) => (r.rssPeakDownloadKiB - r.rssBeforeUploadKiB) / 1024),
      1,
    ),
    row(up, "VmHWM MiB before the PUT", v((r) => r.hwmBeforeUploadKiB / 1024), 0),
    row(up, "VmHWM MiB after the GET", v((r) => r.hwmAfterKiB / 1024), 0),
  ];
}
