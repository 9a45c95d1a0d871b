/**
 * The servers a scenario can measure, behind one small interface: start a
 * fresh process (→ host, port, pid), create accounts before measuring, stop.
 * Cadence is implemented here; Prosody and ejabberd in bench/peers/.
 *
 * Every server gets the equivalent setup: plain TCP with SASL PLAIN allowed
 * (no TLS required), plaintext-stored passwords, the same module set as far
 * as it has one, log level warn, a listen backlog of 511, accounts created
 * into a template before the first run and copied into each run's fresh
 * data directory.
 * @module
 */
import {
  type ConfigOptions,
  prepareTemplate,
  removeAccounts,
  ServerProcess,
  serverRoot,
} from "./server_process.ts";
import type { Account } from "./xmpp_steps.ts";

/** Accounts (and rosters) a scenario needs before it measures anything. */
export interface AccountSetup {
  accounts: Account[];
  /** The host the accounts are on (default "localhost"). */
  host?: string;
  /** Mutual (`both`) subscriptions between `hub` and each of `contacts` (usernames). */
  rosters?: { hub: string; contacts: string[] };
  /** "plain": plaintext passwords, no TLS (the default); "scram": hashed passwords and STARTTLS. */
  auth?: "plain" | "scram";
  /** Extra options for Cadence only (e.g. its abuse limits turned off by `--no-limits`). */
  cadence?: ConfigOptions;
  /**
   * Every server archives every message (XEP-0313): Cadence's mam, Prosody's
   * mod_mam (its default policy archives all), ejabberd's mod_mam with
   * `default: always`; each on its benchmark storage.
   */
  archive?: boolean;
  /** Every server runs personal eventing (PEP): Cadence's and Prosody's pep, ejabberd's mod_pubsub + mod_caps. */
  pep?: boolean;
  /**
   * Every server runs multi-user chat (XEP-0045) on conference.localhost:
   * Cadence's muc component, Prosody's `Component "conference.localhost" "muc"`,
   * ejabberd's mod_muc.
   */
  muc?: boolean;
}

/** A server running for one measured run. */
export interface RunningServer {
  /** Its c2s port on 127.0.0.1. */
  readonly port: number;
  /** Its main process (Cadence's deno, Prosody's lua, ejabberd's beam.smp). */
  readonly pid: number;
  /** CPU time (ms) of its whole process tree so far. */
  cpuMs(): Promise<number>;
  /** Resident memory (KiB) of its whole process tree now. */
  rssKiB(): Promise<number>;
  /** Stops it (SIGTERM, then SIGKILL), removes its directory, returns its exit code. */
  stop(): Promise<number>;
  /** The end of what it printed (warnings and errors only). */
  output(): string;
}

/** A template data directory with a scenario's accounts, made by {@link ServerUnderTest.prepare}. */
export interface Template {
  dir: string;
  setup: AccountSetup;
}

/** One server implementation the scenarios can drive. */
export interface ServerUnderTest {
  /** "Cadence", "Prosody", "ejabberd". */
  readonly name: string;
  /** Why it cannot run here (not installed: the apt-get command to fix it), or undefined. */
  missing(): Promise<string | undefined>;
  /** Its version, as it reports it. */
  version(): Promise<string>;
  /** The modules it runs in the benchmark (its own names), plus a note on what differs. */
  modules(auth?: "plain" | "scram"): { list: string[]; note: string };
  /** Creates the accounts (and rosters) of `setup` into a template directory. */
  prepare(setup: AccountSetup): Promise<Template>;
  /** Starts a fresh process whose data is a copy of `template`. */
  start(template: Template): Promise<RunningServer>;
  /** Removes a template. */
  remove(template: Template): Promise<void>;
}

/** The module set all three servers run, in Cadence's (Prosody's) names. */
export const CADENCE_MODULES = [
  "roster",
  "saslauth",
  "disco",
  "carbons",
  "private",
  "blocklist",
  "vcard",
  "version",
  "uptime",
  "time",
  "ping",
  "lastactivity",
];
/** Loaded on every host whatever the configuration (Cadence and Prosody alike). */
export const AUTOLOADED = ["c2s", "iq", "presence", "message", "offline"];

/** The MUC service of the benchmark (`setup.muc`), on every server. */
export const MUC_HOST = "conference.localhost";

/**
 * Cadence's MUC service (`setup.muc`): its muc module with Prosody's
 * defaults stated (20 messages of history, rooms locked until configured),
 * without the room archive (muc_mam, which muc loads unless disabled),
 * since neither peer archives rooms by default (Prosody has no mod_muc_mam
 * loaded, ejabberd's rooms have `mam: false`).
 */
const MUC_COMPONENT = {
  module: "muc",
  modules_disabled: ["muc_mam"],
  max_history_messages: 20,
  muc_room_default_history_length: 20,
  muc_room_locking: true,
};

/** Cadence's configuration for an auth mode. */
export function cadenceConfig(
  auth: "plain" | "scram" = "plain",
  extra: ConfigOptions = {},
  archive = false,
  pep = false,
  muc = false,
): ConfigOptions {
  const modules = [...CADENCE_MODULES, ...(archive ? ["mam"] : []), ...(pep ? ["pep"] : [])];
  // Federation (autoloaded) only where a scenario measures it: no listener on 5269 otherwise.
  const services = {
    ...(muc ? { components: { [MUC_HOST]: MUC_COMPONENT } } : {}),
    ...(extra.s2s_ports ? {} : { modules_disabled: ["s2s"] }),
  };
  if (auth === "scram") {
    return {
      authentication: "internal_hashed",
      modules_enabled: [...modules, "tls"],
      ...services,
      ...extra,
    };
  }
  return {
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
    modules_enabled: modules,
    ...services,
    ...extra,
  };
}

/**
 * Cadence's abuse limits turned off (`--no-limits`), so that flood measures
 * the output buffer cap with 100 MB really flowing (not the sender's rate
 * limit) and idle-unauth holds every connection (not 32 per address).
 */
export const NO_LIMITS: ConfigOptions = { limits: false, c2s_max_unauthed_per_ip: 1_000_000 };

/** Writes a setup to a JSON file in a new temporary directory; returns the file. */
async function setupFile(setup: AccountSetup): Promise<string> {
  const file = await Deno.makeTempFile({ prefix: "cadence-bench-setup-", suffix: ".json" });
  await Deno.writeTextFile(file, JSON.stringify(setup));
  return file;
}

/** Cadence from this checkout (or `--server DIR`), started by {@link ServerProcess}. */
export const CADENCE: ServerUnderTest = {
  name: "Cadence",
  missing: () => Promise.resolve(undefined),
  version: async () => {
    const deno = JSON.parse(await Deno.readTextFile(`${serverRoot()}/deno.json`).catch(() => "{}"));
    return `Cadence ${deno.version ?? "?"} (${serverRoot()}), Deno ${Deno.version.deno}`;
  },
  modules: (auth = "plain") => ({
    list: [...AUTOLOADED, ...(cadenceConfig(auth).modules_enabled as string[])],
    note: `authentication ${cadenceConfig(auth).authentication}, storage sqlite` +
      (auth === "plain" ? "; login-scram: internal_hashed, + tls, encryption required" : ""),
  }),
  async prepare(setup) {
    const dir = await prepareTemplate(
      cadenceConfig(setup.auth, setup.cadence, setup.archive, setup.pep, setup.muc),
      async (config) => {
        const file = await setupFile(setup);
        try {
          // The checkout that runs the server seeds its own data format, if it has the script.
          const theirs = `${serverRoot()}/bench/seed_accounts.ts`;
          const script = await Deno.stat(theirs).then(
            () => theirs,
            () => new URL("./seed_accounts.ts", import.meta.url).pathname,
          );
          const out = await new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", script, config, file],
            cwd: serverRoot(),
            env: { NO_COLOR: "1" }, // plain text for the report
            stdout: "piped",
            stderr: "piped",
          }).output();
          if (!out.success) {
            const text = new TextDecoder().decode(out.stderr) +
              new TextDecoder().decode(out.stdout);
            // The report shows an error's first line: make it the one that says what failed.
            const cause = text.split("\n").find((l) => /error/i.test(l))?.trim() ?? "";
            throw new Error(
              `seed_accounts.ts failed (exit ${out.code}): ${cause}\n${text.slice(-2000)}`,
            );
          }
        } finally {
          await Deno.remove(file).catch(() => {});
        }
      },
    );
    return { dir, setup };
  },
  start: (template) =>
    ServerProcess.start(
      cadenceConfig(
        template.setup.auth,
        template.setup.cadence,
        template.setup.archive,
        template.setup.pep,
        template.setup.muc,
      ),
      template.dir,
    ),
  remove: (template) => removeAccounts(template.dir),
};

/** The usernames `<prefix>0` … `<prefix><n-1>`, all with password "any". */
export function numbered(prefix: string, n: number): Account[] {
  return Array.from({ length: n }, (_, i) => ({ username: `${prefix}${i}`, password: "any" }));
}
