/**
 * Debian's ejabberd (23.x) as a peer for end-to-end tests, run as
 * `bench/peers/ejabberd.ts` runs it: the VM itself (`erl -noinput -noshell
 * -mnesia dir DIR -s ejabberd`, no node name, so no epmd), with
 * `EJABBERD_CONFIG_PATH` pointing at a generated configuration in a
 * directory of its own. Accounts are created through mod_http_api's
 * `register` on an HTTP listener of the same node.
 *
 * Name resolution: ejabberd's s2s (xmpp 1.6's `xmpp_stream_out`) asks for
 * `_xmpp-server._tcp.DOMAIN` SRV records through Erlang's own resolver
 * (`inet_res`, configured by the `ERL_INETRC` file written here: the test's
 * DNS server, no resolv.conf, no hosts file), then resolves each SRV target
 * — or the domain itself when there is no SRV record — with
 * `net:getaddrinfo`, i.e. the C library's resolver (/etc/hosts and
 * /etc/resolv.conf), which no inetrc setting reaches. So a test domain must
 * have an SRV record whose target is an IP address literal (getaddrinfo
 * parses it without a lookup); see `ejabberdSrv`.
 *
 * Certificates: 23.01's `s2s_use_starttls` takes false, true, optional or
 * required (no `required_trusted` any more). Whether its outgoing streams
 * verify the peer's certificate is the `s2s_out_tls_verify` hook, which
 * `mod_s2s_dialback` answers "no" for peers its `access` allows; so
 * certificate-only federation is `dialback: false`. It checks a peer's
 * certificate against the peer's domain (stream `to`/`from`), not the SRV
 * target, in both directions (xmpp's `xmpp_stream_pkix`), and logs
 * "Accepted inbound|outbound s2s EXTERNAL|dialback authentication A -> B".
 *
 * @module
 */
import type { DnsRecord } from "./dns_server.ts";

const ERL = "/usr/bin/erl";
const EJABBERDCTL = "/usr/sbin/ejabberdctl";
const LIBS = "/usr/lib/x86_64-linux-gnu";

/** True when Debian's ejabberd is installed; in CI its absence is an error. */
export async function ejabberdReady(): Promise<boolean> {
  for (const file of [ERL, EJABBERDCTL]) {
    if (await Deno.stat(file).then(() => false, () => true)) {
      if (Deno.env.get("CI")) throw new Error(`ejabberd is missing in CI (${file})`);
      console.warn(`skipped: ejabberd is not installed (${file}; apt-get install -y ejabberd)`);
      return false;
    }
  }
  return true;
}

/**
 * The SRV record by which ejabberd finds a server for `domain` at
 * `address:port` (an IP literal as target: see the module note).
 */
export function ejabberdSrv(
  domain: string,
  address: string,
  port = 5269,
): Record<string, DnsRecord[]> {
  return { [`_xmpp-server._tcp.${domain}`]: [{ srv: [0, 5, port, address] }] };
}

export interface EjabberdOptions {
  /** Its own directory (config, spool, log); the caller removes it. */
  dir: string;
  /** The virtual host it serves. */
  host: string;
  /** The address its listeners bind. */
  address: string;
  c2sPort: number;
  /** Port of the HTTP API (account creation). */
  httpPort: number;
  s2sPort?: number;
  /** The DNS server its s2s asks (UDP on 127.0.0.1). */
  dnsPort: number;
  /** `s2s_use_starttls`: false (in the clear), or required. */
  starttls: false | "required";
  /** Certificate and key files (PEM) for `host`, needed with STARTTLS. */
  certfiles?: string[];
  /**
   * The roots (PEM) it trusts, as `s2s_cafile` (what s2s verifies peers
   * with) and `ca_file` (what ejabberd_pkix checks its own `certfiles`
   * against at start: it warns "signed by unknown CA" otherwise). Default:
   * the system's.
   */
  cafile?: string;
  /**
   * Loads `mod_s2s_dialback` (default true). Without it, ejabberd
   * authenticates only by certificate: its outgoing streams verify the
   * peer's certificate (`s2s_out_tls_verify` is true unless dialback's
   * `access` allows the peer) and use SASL EXTERNAL, and its incoming
   * streams offer SASL EXTERNAL alone.
   */
  dialback?: boolean;
}

export interface Ejabberd {
  process: Deno.ChildProcess;
  log: string;
  /** Creates an account (mod_http_api `register`). */
  register(user: string, password: string): Promise<void>;
  /** The last lines of ejabberd's log. */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM, then SIGKILL if it lingers; resolves when the VM has exited. */
  stop(): Promise<void>;
}

function config(o: EjabberdOptions): string {
  const listener = (port: number, module: string, ...more: string[]) => [
    "  -",
    `    port: ${port}`,
    `    ip: "${o.address}"`,
    `    module: ${module}`,
    ...more,
  ];
  return [
    "hosts:",
    `  - ${o.host}`,
    "loglevel: info",
    "log_rotate_count: 0",
    "auth_method: internal",
    "auth_password_format: plain",
    "default_db: mnesia",
    `s2s_use_starttls: ${o.starttls}`,
    "s2s_dns_timeout: 2",
    "s2s_dns_retries: 1",
    ...(o.certfiles?.length ? ["certfiles:", ...o.certfiles.map((f) => `  - "${f}"`)] : []),
    ...(o.cafile ? [`s2s_cafile: "${o.cafile}"`, `ca_file: "${o.cafile}"`] : []),
    "listen:",
    ...listener(o.c2sPort, "ejabberd_c2s", "    starttls_required: false"),
    ...listener(o.s2sPort ?? 5269, "ejabberd_s2s_in"),
    ...listener(o.httpPort, "ejabberd_http", "    request_handlers:", "      /api: mod_http_api"),
    "api_permissions:",
    '  "test setup":',
    "    from:",
    "      - mod_http_api",
    "    who:",
    "      ip: 127.0.0.0/8",
    "    what:",
    "      - register",
    "modules:",
    "  mod_roster: {}",
    "  mod_disco: {}",
    "  mod_version: {}",
    "  mod_ping: {}",
    ...(o.dialback === false ? [] : ["  mod_s2s_dialback: {}"]),
    "  mod_http_api: {}",
    "",
  ].join("\n");
}

/**
 * Starts ejabberd in `o.dir`; waits until its HTTP API answers. The VM
 * sometimes quits while starting (seen about once in 30 starts here, cause
 * not known yet): then it is started once more, and the first attempt's log
 * is printed, to find the cause.
 */
export async function startEjabberd(o: EjabberdOptions): Promise<Ejabberd> {
  try {
    return await startOnce(o);
  } catch (e) {
    if (!/exited at start/.test(String(e))) throw e;
    console.warn(`ejabberd: trying again after: ${(e as Error).message}`);
    await Deno.remove(`${o.dir}/spool`, { recursive: true }).catch(() => {});
    await new Promise((r) => setTimeout(r, 1000));
    return await startOnce(o);
  }
}

async function startOnce(o: EjabberdOptions): Promise<Ejabberd> {
  const file = `${o.dir}/ejabberd.yml`;
  const log = `${o.dir}/ejabberd.log`;
  await Deno.writeTextFile(file, config(o));
  // Erlang's resolver: only the test's DNS server (resolv_conf must come first: it resets nameservers).
  await Deno.writeTextFile(
    `${o.dir}/inetrc`,
    `{resolv_conf, ""}.\n{hosts_file, ""}.\n{nameserver, {127,0,0,1}, ${o.dnsPort}}.\n` +
      "{lookup, [dns]}.\n",
  );
  await Deno.mkdir(`${o.dir}/spool`, { recursive: true });
  const process = new Deno.Command(ERL, {
    args: ["-noinput", "-noshell", "-mnesia", "dir", `"${o.dir}/spool"`, "-s", "ejabberd"],
    cwd: o.dir,
    env: {
      EJABBERD_CONFIG_PATH: file,
      EJABBERD_LOG_PATH: log,
      ERL_INETRC: `${o.dir}/inetrc`,
      ERL_LIBS: LIBS,
      ERL_CRASH_DUMP_BYTES: "0",
      HOME: o.dir,
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = process.status.finally(() => exited = true);
  const tail = async (lines = 60) => {
    const text = await Deno.readTextFile(log).catch(() => "(no log)");
    return text.split("\n").slice(-lines).join("\n");
  };
  const api = async (command: string, body: Record<string, string>) => {
    const res = await fetch(`http://${o.address}:${o.httpPort}/api/${command}`, {
      method: "POST",
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`ejabberd ${command}: ${res.status} ${text}`);
  };
  const stop = async () => {
    if (!exited) {
      try {
        process.kill("SIGTERM");
      } catch { /* gone already */ }
    }
    const killer = setTimeout(() => {
      try {
        process.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await status;
    clearTimeout(killer);
  };
  // Up when the HTTP API answers (a status, whatever it is): listeners start together.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`ejabberd exited at start:\n${await tail()}`);
    const up = await fetch(`http://${o.address}:${o.httpPort}/api/status`, { method: "POST" })
      .then(async (r) => (await r.body?.cancel(), true), () => false);
    if (up) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`ejabberd did not start:\n${await tail()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    process,
    log,
    register: (user, password) => api("register", { user, host: o.host, password }),
    logTail: tail,
    stop,
  };
}
