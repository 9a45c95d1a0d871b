/**
 * Debian's Prosody (0.12.x) as a server under test: `prosody -F --config
 * FILE` in the foreground with its own temporary directory, plain TCP
 * (`c2s_require_encryption = false`, `allow_unencrypted_plain_auth = true`),
 * `authentication = "internal_plain"` with the `internal` (file) storage,
 * log level warn to the console, `network_settings.tcp_backlog = 511`, s2s
 * and HTTP off, Lua's default GC (what Debian ships). For login-scram:
 * `internal_hashed`, mod_tls with a P-256 certificate, encryption required.
 *
 * Accounts and rosters are written straight into Prosody's data files
 * (`data/localhost/accounts/<user>.dat`, `…/roster/<user>.dat`, names
 * encoded as util/datamanager.lua does), which is what
 * `prosodyctl register` writes, thousands of times faster.
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
import {
  AUTOLOADED,
  CADENCE_MODULES,
  MUC_HOST,
  type ServerUnderTest,
  type Template,
} from "../servers.ts";
import { type PeerCertificate, peerCertificate, scramSha1 } from "./tls.ts";

const PROSODY = "/usr/bin/prosody";
const HOST = "localhost";
/** The modules Prosody runs (its names are Cadence's); s2s is disabled. */
const MODULES = [...CADENCE_MODULES];
/** Iterations of the stored SCRAM credentials (Cadence's; the client caches SaltedPassword). */
const SCRAM_ITERATIONS = 4096;

/** A node or host name as Prosody's datamanager encodes it in file names. */
function encode(s: string): string {
  return s.replace(
    /[^A-Za-z0-9]/g,
    (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/** A Lua string literal. */
function lua(s: string): string {
  return JSON.stringify(s); // ASCII names and passwords: JSON's escapes are Lua's
}

function config(
  dir: string,
  port: number,
  tls?: PeerCertificate,
  archive = false,
  pep = false,
  muc = false,
): string {
  const modules = [...MODULES, ...(archive ? ["mam"] : []), ...(pep ? ["pep"] : [])];
  const auth = tls
    ? [
      'authentication = "internal_hashed"',
      "c2s_require_encryption = true",
      `ssl = { certificate = ${lua(tls.cert)}, key = ${lua(tls.key)} }`,
      `modules_enabled = { ${[...modules, "tls"].map(lua).join(", ")} }`,
    ]
    : [
      'authentication = "internal_plain"',
      "c2s_require_encryption = false",
      "allow_unencrypted_plain_auth = true",
      `modules_enabled = { ${modules.map(lua).join(", ")} }`,
    ];
  return [
    "run_as_root = true -- the bench runs as root; Prosody refuses to otherwise",
    `pidfile = ${lua(`${dir}/prosody.pid`)}`,
    `data_path = ${lua(`${dir}/data`)}`,
    `certificates = ${lua(`${dir}/certs`)}`,
    `interfaces = { ${lua(SERVER_HOST)} }`,
    `c2s_ports = { ${port} }`,
    "c2s_direct_tls_ports = { }",
    "s2s_ports = { }",
    "http_ports = { }",
    "https_ports = { }",
    "component_ports = { }",
    'log = { { levels = { min = "warn" }, to = "console" } }',
    'storage = "internal"',
    ...auth,
    "network_settings = { tcp_backlog = 511 }",
    'modules_disabled = { "s2s" }',
    `VirtualHost ${lua(HOST)}`,
    ...(muc ? MUC_COMPONENT : []),
    "",
  ].join("\n");
}

/**
 * The MUC service (`setup.muc`): Prosody's mod_muc with 20 messages of
 * history and rooms locked until configured (its defaults, stated; the
 * bench configures the room), XEP-0421 occupant ids on (its default, as
 * Cadence's), no room archive (mod_muc_mam is not loaded).
 */
const MUC_COMPONENT = [
  `Component ${lua(MUC_HOST)} "muc"`,
  "  max_history_messages = 20",
  "  muc_room_default_history_length = 20",
  "  muc_room_locking = true",
];

/** Writes Prosody's data files for a setup into `data`. */
async function writeData(data: string, t: Template["setup"]): Promise<void> {
  const accounts = `${data}/${encode(HOST)}/accounts`;
  await Deno.mkdir(accounts, { recursive: true });
  for (const a of t.accounts) {
    let fields = `\t["password"] = ${lua(a.password)};\n`;
    if (t.auth === "scram") {
      // What mod_auth_internal_hashed stores: salt, iteration count, hex keys.
      const salt = crypto.randomUUID();
      const { storedKey, serverKey } = scramSha1(a.password, salt, SCRAM_ITERATIONS);
      fields = `\t["salt"] = ${lua(salt)};\n\t["iteration_count"] = ${SCRAM_ITERATIONS};\n` +
        `\t["stored_key"] = ${lua(storedKey)};\n\t["server_key"] = ${lua(serverKey)};\n`;
    }
    await Deno.writeTextFile(`${accounts}/${encode(a.username)}.dat`, `return {\n${fields}};\n`);
  }
  if (t.rosters) {
    const rosters = `${data}/${encode(HOST)}/roster`;
    await Deno.mkdir(rosters, { recursive: true });
    const roster = (contacts: string[]) =>
      "return {\n" +
      '\t[false] = { ["version"] = 1; ["pending"] = { }; };\n' +
      contacts.map((c) =>
        `\t[${lua(`${c}@${HOST}`)}] = { ["subscription"] = "both"; ["groups"] = { }; };\n`
      ).join("") +
      "};\n";
    const { hub, contacts } = t.rosters;
    await Deno.writeTextFile(`${rosters}/${encode(hub)}.dat`, roster(contacts));
    for (const c of contacts) {
      await Deno.writeTextFile(`${rosters}/${encode(c)}.dat`, roster([hub]));
    }
  }
}

async function run(cmd: string, args: string[], timeoutMs = 15_000): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

/** Debian's Prosody. */
export const PROSODY_SUT: ServerUnderTest = {
  name: "Prosody",
  async missing() {
    const ok = await Deno.stat(PROSODY).then(() => true, () => false);
    return ok ? undefined : `${PROSODY} not found; install it with: apt-get install -y prosody`;
  },
  async version() {
    // `prosody --version` starts a server in 0.12; `prosodyctl about` only reports.
    const about = await run("prosodyctl", ["about"]).catch((e) => `unknown (${e.message})`);
    const first = about.split("\n")[0].trim();
    const luaVersion = about.match(/Lua version:\s*(.+)/)?.[1]?.trim();
    return luaVersion ? `${first} (${luaVersion}, default GC)` : first;
  },
  modules: (auth = "plain") => ({
    list: [...AUTOLOADED, ...MODULES, ...(auth === "scram" ? ["tls"] : [])],
    note: `authentication "internal_${auth === "scram" ? "hashed" : "plain"}", storage ` +
      '"internal" (files); s2s disabled' +
      (auth === "plain" ? '; login-scram: "internal_hashed", + tls, encryption required' : ""),
  }),
  async prepare(setup) {
    const dir = await Deno.makeTempDir({ prefix: "prosody-bench-accounts-" });
    trackTemplate(dir);
    try {
      await writeData(`${dir}/data`, setup);
    } catch (e) {
      await removeAccounts(dir);
      throw e;
    }
    return { dir, setup };
  },
  async start(template) {
    const dir = await Deno.makeTempDir({ prefix: "prosody-bench-" });
    const port = await freePort();
    await copyTree(`${template.dir}/data`, `${dir}/data`);
    await Deno.mkdir(`${dir}/certs`);
    const file = `${dir}/prosody.cfg.lua`;
    const tls = template.setup.auth === "scram" ? await peerCertificate() : undefined;
    await Deno.writeTextFile(
      file,
      config(dir, port, tls, template.setup.archive, template.setup.pep, template.setup.muc),
    );
    return await ServerProcess.spawn({
      command: PROSODY,
      args: ["-F", "--config", file],
      cwd: dir,
      dir,
      port,
    });
  },
  remove: (template) => removeAccounts(template.dir),
};
