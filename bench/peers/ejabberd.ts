/**
 * Debian's ejabberd (23.x) as a server under test. The bench runs the VM
 * itself, as `ejabberdctl foreground` would but without a node name:
 * `erl -noinput -noshell +K true +P 250000 -mnesia dir DIR -s ejabberd`
 * with `EJABBERD_CONFIG_PATH` pointing at a generated configuration. The
 * `erl` script execs erlexec, which execs beam.smp, so the spawned pid is
 * beam.smp's; its helpers (erl_child_setup, inet_gethost, memsup, eimp)
 * are its descendants and are measured and killed with it. Without a node
 * name the VM is not distributed: no epmd is started, so none can be left
 * over from one run to break the next.
 *
 * Configuration: one c2s listener on 127.0.0.1 with `starttls_required:
 * false`, `backlog: 511` (the default of 5 causes SYN stalls) and no
 * shaper; `auth_method: internal`, `auth_password_format: plain`, mnesia
 * storage; loglevel warning; modules equivalent to Cadence's set. For
 * login-scram: `auth_password_format: scram`, STARTTLS required, a P-256
 * certificate in `certfiles`.
 *
 * Accounts are registered once through mod_http_api's `register` (and
 * mod_admin_extra's `add_rosteritem`) on a template node with an HTTP
 * listener; each run copies the template's mnesia directory and starts
 * without the HTTP listener.
 * @module
 */
import {
  copyTree,
  freePort,
  removeAccounts,
  SERVER_HOST,
  ServerProcess,
  trackTemplate,
} from "../server_process.ts";
import { MUC_HOST, type ServerUnderTest, type Template } from "../servers.ts";
import { type PeerCertificate, peerCertificate } from "./tls.ts";

const ERL = "/usr/bin/erl";
const EJABBERDCTL = "/usr/sbin/ejabberdctl";
const LIBS = "/usr/lib/x86_64-linux-gnu";
const HOST = "localhost";

/** ejabberd's modules for Cadence's set: mod_last answers uptime too; blocking needs privacy. */
const MODULES: Record<string, string> = {
  mod_roster: "roster",
  mod_disco: "disco",
  mod_carboncopy: "carbons",
  mod_private: "private",
  mod_privacy: "(needed by mod_blocking)",
  mod_blocking: "blocklist",
  mod_vcard: "vcard",
  mod_version: "version",
  mod_last: "lastactivity, uptime",
  mod_time: "time",
  mod_ping: "ping",
  mod_offline: "offline",
};

/**
 * The MUC service (`setup.muc`): mod_muc on conference.localhost with 20
 * messages of history (its default, stated), and its occupant caps raised:
 * by default a room holds at most 200 occupants (`max_users`, also a room
 * option) and stops broadcasting presence beyond 1000 (`max_users_presence`).
 * No shapers or minimum intervals (its defaults).
 */
const MUC_MODULE = [
  "  mod_muc:",
  `    host: ${MUC_HOST}`,
  "    access_create: all",
  "    history_size: 20",
  "    max_users: 100000",
  "    max_users_presence: 100000",
  "    default_room_options:",
  "      max_users: 100000",
  "      persistent: false",
  "      mam: false",
];

/**
 * The configuration; `httpPort` adds the HTTP API used to create accounts in
 * a template; `tls` (login-scram) stores SCRAM hashes and requires STARTTLS.
 */
function config(
  port: number,
  httpPort?: number,
  tls?: PeerCertificate,
  archive = false,
  pep = false,
  muc = false,
): string {
  const modules = Object.keys(MODULES).map((m) => `  ${m}: {}`);
  if (archive) modules.push("  mod_mam:", "    default: always");
  if (pep) {
    modules.push("  mod_caps: {}", "  mod_pubsub:", "    plugins:", "      - flat", "      - pep");
  }
  if (muc) modules.push(...MUC_MODULE);
  const lines = [
    "hosts:",
    `  - ${HOST}`,
    "loglevel: warning",
    "log_rotate_count: 0",
    "auth_method: internal",
    `auth_password_format: ${tls ? "scram" : "plain"}`,
    ...(tls ? ["certfiles:", `  - "${tls.pem}"`] : []),
    "default_db: mnesia",
    "listen:",
    "  -",
    `    port: ${port}`,
    `    ip: "${SERVER_HOST}"`,
    "    module: ejabberd_c2s",
    "    max_stanza_size: 262144",
    ...(tls
      ? ["    starttls: true", "    starttls_required: true"]
      : ["    starttls_required: false"]),
    "    backlog: 511",
  ];
  if (httpPort) {
    lines.push(
      "  -",
      `    port: ${httpPort}`,
      `    ip: "${SERVER_HOST}"`,
      "    module: ejabberd_http",
      "    request_handlers:",
      "      /api: mod_http_api",
      "api_permissions:",
      '  "bench setup":',
      "    from:",
      "      - mod_http_api",
      "    who:",
      "      ip: 127.0.0.0/8",
      "    what:",
      "      - register",
      "      - add_rosteritem",
    );
    modules.push("  mod_http_api: {}", "  mod_admin_extra: {}");
  }
  lines.push("modules:", ...modules, "");
  return lines.join("\n");
}

/** Starts beam.smp on `dir/spool` with the configuration in `dir`. */
async function startVm(
  dir: string,
  port: number,
  auth: "plain" | "scram" | undefined,
  httpPort?: number,
  archive = false,
  pep = false,
  muc = false,
): Promise<ServerProcess> {
  // The setup node (with httpPort) need not settle: nothing is measured on it.
  const file = `${dir}/ejabberd.yml`;
  const tls = auth === "scram" ? await peerCertificate() : undefined;
  await Deno.writeTextFile(file, config(port, httpPort, tls, archive, pep, muc));
  await Deno.mkdir(`${dir}/spool`, { recursive: true });
  return await ServerProcess.spawn({
    command: ERL,
    args: [
      "-noinput",
      "-noshell",
      "+K",
      "true",
      "+P",
      "250000",
      "-mnesia",
      "dir",
      `"${dir}/spool"`,
      "-s",
      "ejabberd",
    ],
    cwd: dir,
    dir,
    port,
    env: {
      EJABBERD_CONFIG_PATH: file,
      EJABBERD_LOG_PATH: `${dir}/ejabberd.log`,
      ERL_LIBS: LIBS,
      ERL_MAX_PORTS: "32000",
      ERL_MAX_ETS_TABLES: "1400",
      ERL_CRASH_DUMP_BYTES: "0",
      HOME: dir,
    },
    noSettle: httpPort !== undefined,
  });
}

/** Calls one mod_http_api command; throws unless it succeeded. */
async function api(httpPort: number, command: string, body: Record<string, string>) {
  const res = await fetch(`http://${SERVER_HOST}:${httpPort}/api/${command}`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) {
    throw new Error(`ejabberd ${command} ${JSON.stringify(body)}: ${res.status} ${text}`);
  }
}

/** Runs `count` tasks, `width` at a time. */
async function inParallel(count: number, width: number, task: (i: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
}

async function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  return (new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr)).trim();
}

/** Debian's ejabberd. */
export const EJABBERD_SUT: ServerUnderTest = {
  name: "ejabberd",
  async missing() {
    for (const file of [ERL, EJABBERDCTL]) {
      if (!await Deno.stat(file).then(() => true, () => false)) {
        return `${file} not found; install it with: apt-get install -y ejabberd`;
      }
    }
    return undefined;
  },
  async version() {
    const pkg = await run("dpkg-query", ["-W", "-f", "${Version}", "ejabberd"]).catch(() => "?");
    const otp = await run(ERL, [
      "-noshell",
      "-eval",
      'io:format("~s/~s", [erlang:system_info(otp_release), erlang:system_info(version)]), halt().',
    ]).catch(() => "?");
    return `ejabberd ${pkg} (Erlang/OTP ${otp.replace("/", ", erts ")})`;
  },
  modules: (auth = "plain") => ({
    list: Object.entries(MODULES).map(([m, ours]) => `${m} (${ours})`),
    note: "presence, message, iq and c2s are ejabberd's core; VM without a node name " +
      "(not distributed, no epmd); auth_method internal, " +
      `auth_password_format ${auth}, mnesia; no mod_stream_mgmt, mod_caps or shaper` +
      (auth === "plain" ? "; login-scram: auth_password_format scram, starttls_required" : ""),
  }),
  async prepare(setup) {
    const dir = await Deno.makeTempDir({ prefix: "ejabberd-bench-accounts-" });
    trackTemplate(dir);
    const work = `${dir}/setup`;
    await Deno.mkdir(work);
    const httpPort = await freePort();
    let server: ServerProcess | undefined;
    try {
      // The setup node's own directory goes when it stops: keep the spool by copying it first.
      server = await startVm(work, await freePort(), setup.auth, httpPort);
      await inParallel(setup.accounts.length, 16, (i) => {
        const a = setup.accounts[i];
        return api(httpPort, "register", { user: a.username, host: HOST, password: a.password });
      });
      if (setup.rosters) {
        const { hub, contacts } = setup.rosters;
        const item = (owner: string, contact: string) =>
          api(httpPort, "add_rosteritem", {
            localuser: owner,
            localhost: HOST,
            user: contact,
            host: HOST,
            nick: contact,
            group: "",
            subs: "both",
          });
        await inParallel(contacts.length, 16, async (i) => {
          await item(hub, contacts[i]);
          await item(contacts[i], hub);
        });
      }
      // Stop cleanly so that mnesia has written everything; keep its directory (the template).
      const stopping = server.stop({ keepDir: true });
      server = undefined;
      const code = await stopping;
      if (code !== 0) throw new Error(`the setup node exited with ${code}`);
    } catch (e) {
      if (server) await server.stop();
      await removeAccounts(dir);
      throw e;
    }
    return { dir, setup };
  },
  async start(template: Template) {
    const dir = await Deno.makeTempDir({ prefix: "ejabberd-bench-" });
    await copyTree(`${template.dir}/setup/spool`, `${dir}/spool`);
    return await startVm(
      dir,
      await freePort(),
      template.setup.auth,
      undefined,
      template.setup.archive,
      template.setup.pep,
      template.setup.muc,
    );
  },
  remove: (template) => removeAccounts(template.dir),
};
