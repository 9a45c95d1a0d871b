/**
 * Messages across servers: two Cadence processes federating on loopback
 * (a.test and b.test, found through a loopback DNS server, STARTTLS and
 * dialback as in production). P senders on a.test each send M chat
 * messages, W in flight, to a partner on b.test. Reports server CPU per
 * message on each side, beside the same exchange between two users of
 * a.test measured in the same run (the c2s routing figure), and the time a
 * new route takes (DNS, TCP, TLS, dialback both ways: until the first
 * message arrives). Cadence only: the peers' federation is not measured.
 * @module
 */
import { freePort, SERVER_HOST, ServerProcess, serverRoot } from "../server_process.ts";
import { startDnsServer } from "../../tests/helpers/dns_server.ts";
import { RawClient } from "../../tests/helpers/rawclient.ts";
import { type Row, row } from "../report.ts";
import { CADENCE_MODULES } from "../servers.ts";

export interface S2sRun {
  pairs: number;
  messages: number;
  /** Messages delivered across, and between users of one server. */
  delivered: number;
  deliveredLocal: number;
  /** From the first message sent to its arrival over a new route. */
  setupMs: number;
  /** Server CPU per message across: the sending and the receiving server. */
  senderUs: number;
  receiverUs: number;
  /** Server CPU per message between two users of one server (c2s routing). */
  localUs: number;
  errors: string[];
}

export const S2S_SETUP = "two Cadence processes (a.test, b.test) with the s2s module, STARTTLS " +
  "required, dialback, SRV records from a loopback DNS server; P pairs, each sender sending M " +
  "chat messages with W in flight to its partner on the other server; the same between two " +
  "users of a.test in the same run for comparison; accounts created before the servers start";

const PASSWORD = "any";
const TIMEOUT_MS = 60_000;

/** Creates the accounts in the data directory, before the server starts (bench/seed_accounts.ts). */
async function seed(config: string, host: string, users: string[]) {
  const file = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(
    file,
    JSON.stringify({ host, accounts: users.map((username) => ({ username, password: PASSWORD })) }),
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/seed_accounts.ts", config, file],
    cwd: serverRoot(),
    stdout: "null",
    stderr: "piped",
  }).output();
  await Deno.remove(file).catch(() => {});
  if (!out.success) throw new Error(`seeding ${host}: ${new TextDecoder().decode(out.stderr)}`);
}

async function server(host: string, s2sPort: number, dnsPort: number, users: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "cadence-bench-s2s-" });
  const port = await freePort();
  const config = `${dir}/cadence.config.ts`;
  await Deno.writeTextFile(
    config,
    `export default ${
      JSON.stringify({
        virtual_hosts: { [host]: {} },
        interfaces: [SERVER_HOST],
        c2s_ports: [port],
        c2s_direct_tls_ports: [],
        data_path: `${dir}/data`,
        log: "warn",
        authentication: "internal_plain",
        c2s_require_encryption: false,
        allow_unencrypted_plain_auth: true,
        modules_enabled: [...CADENCE_MODULES, "s2s"],
        s2s_ports: [s2sPort],
        s2s_dns_server: `127.0.0.1:${dnsPort}`,
      })
    };\n`,
  );
  await seed(config, host, users);
  const proc = await ServerProcess.spawn({
    command: Deno.execPath(),
    args: ["run", "-A", "main.ts", "start", "--config", config],
    cwd: serverRoot(),
    dir,
    port,
  });
  return { proc, port };
}

async function login(port: number, user: string, host: string): Promise<RawClient> {
  const c = await RawClient.connect(port, SERVER_HOST);
  await c.login(user, PASSWORD, "b", host);
  c.send("<presence/>"); // available: messages to the bare JID come to it
  return c;
}

const count = (c: RawClient, tag: string) => c.received.split(tag).length - 1;

/** Each sender sends `messages` to its receiver, `window` in flight; resolves with the deliveries. */
async function exchange(
  senders: RawClient[],
  receivers: RawClient[],
  to: string[],
  messages: number,
  window: number,
  tag: string,
): Promise<number> {
  for (const r of receivers) r.clear();
  await Promise.all(senders.map(async (s, i) => {
    for (let sent = 0; sent < messages;) {
      const batch = Math.min(window, messages - sent);
      let xml = "";
      for (let k = 0; k < batch; k++) {
        xml += `<message to='${to[i]}' type='chat'><body>${tag}${sent + k}</body></message>`;
      }
      s.send(xml);
      sent += batch;
      const deadline = Date.now() + TIMEOUT_MS;
      while (count(receivers[i], `<body>${tag}`) < sent && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  }));
  return receivers.reduce((n, r) => n + count(r, `<body>${tag}`), 0);
}

export async function runS2s(pairs: number, messages: number, window: number): Promise<S2sRun> {
  const [sA, sB] = [await freePort(), await freePort()];
  const dns = await startDnsServer({
    "_xmpp-server._tcp.a.test": [{ srv: [0, 0, sA, "a.test"] }],
    "_xmpp-server._tcp.b.test": [{ srv: [0, 0, sB, "b.test"] }],
    "a.test": [{ a: "127.0.0.1" }],
    "b.test": [{ a: "127.0.0.1" }],
  });
  const names = Array.from({ length: pairs }, (_, i) => i);
  const a = await server("a.test", sA, dns.nameServer.port, [
    ...names.map((i) => `s${i}`),
    ...names.map((i) => `l${i}`),
  ]);
  const b = await server("b.test", sB, dns.nameServer.port, names.map((i) => `r${i}`)).catch(
    async (e) => {
      await a.proc.stop();
      throw e;
    },
  );
  const clients: RawClient[] = [];
  const errors: string[] = [];
  try {
    const senders = await Promise.all(names.map((i) => login(a.port, `s${i}`, "a.test")));
    const receivers = await Promise.all(names.map((i) => login(b.port, `r${i}`, "b.test")));
    const locals = await Promise.all(names.map((i) => login(a.port, `l${i}`, "a.test")));
    clients.push(...senders, ...receivers, ...locals);
    // A new route: DNS, TCP, TLS, dialback (b.test asks a.test back), then the message.
    const t0 = performance.now();
    senders[0].send("<message to='r0@b.test' type='chat'><body>hello</body></message>");
    await receivers[0].waitFor(/<body>hello<\/body>/, TIMEOUT_MS);
    const setupMs = performance.now() - t0;
    // Warm-up both ways, unmeasured.
    await exchange(senders, receivers, names.map((i) => `r${i}@b.test`), 20, window, "w");
    await exchange(senders, locals, names.map((i) => `l${i}@a.test`), 20, window, "v");

    const [a0, b0] = [await a.proc.cpuMs(), await b.proc.cpuMs()];
    const delivered = await exchange(
      senders,
      receivers,
      names.map((i) => `r${i}@b.test`),
      messages,
      window,
      "m",
    );
    const [a1, b1] = [await a.proc.cpuMs(), await b.proc.cpuMs()];
    const deliveredLocal = await exchange(
      senders,
      locals,
      names.map((i) => `l${i}@a.test`),
      messages,
      window,
      "n",
    );
    const a2 = await a.proc.cpuMs();
    const expected = pairs * messages;
    if (delivered < expected) errors.push(`${expected - delivered} messages across not delivered`);
    if (deliveredLocal < expected) errors.push(`${expected - deliveredLocal} local not delivered`);
    return {
      pairs,
      messages,
      delivered,
      deliveredLocal,
      setupMs,
      senderUs: (a1 - a0) * 1000 / Math.max(1, delivered),
      receiverUs: (b1 - b0) * 1000 / Math.max(1, delivered),
      localUs: (a2 - a1) * 1000 / Math.max(1, deliveredLocal),
      errors,
    };
  } finally {
    for (const c of clients) c.close();
    await a.proc.stop();
    await b.proc.stop();
    dns.close();
  }
}

export function describeS2sRun(r: S2sRun): string {
  return `${r.delivered}/${r.pairs * r.messages} across, ${r.deliveredLocal} local; new route ` +
    `${r.setupMs.toFixed(0)} ms; server CPU per message across: sender ${
      r.senderUs.toFixed(1)
    } µs, ` +
    `receiver ${r.receiverUs.toFixed(1)} µs; between two local users ${r.localUs.toFixed(1)} µs` +
    (r.errors.length ? `; ${r.errors.join("; ")}` : "");
}

export function s2sRows(runs: S2sRun[], pairs: number): Row[] {
  const name = `s2s ${pairs} pairs`;
  return [
    row(name, "sending server CPU µs/message", runs.map((r) => r.senderUs), 1),
    row(name, "receiving server CPU µs/message", runs.map((r) => r.receiverUs), 1),
    row(name, "c2s routing, same run, µs/message", runs.map((r) => r.localUs), 1),
    row(name, "new route (DNS, TLS, dialback) ms", runs.map((r) => r.setupMs), 0),
    row(name, "messages not delivered", runs.map((r) => r.pairs * r.messages - r.delivered), 0),
  ];
}
