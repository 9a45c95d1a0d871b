/**
 * Cadence's one entry point: `start` (the default) runs the server; the other
 * commands do prosodyctl's jobs.
 *
 *     deno run -A main.ts [COMMAND] [ARGS…] [--config FILE]
 *
 * The configuration is the `--config` file, else `$CADENCE_CONFIG`, else
 * `./cadence.config.ts` when it exists, else the embedded defaults.
 *
 * Argument parsing uses `node:util`'s `parseArgs`, standing in for
 * `@std/cli` (JSR is out of reach); it is used in `parseCommandLine` only.
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { ConfigError, readConfig, type ResolvedConfig } from "./core/config.ts";
import { guardProcess } from "./core/crashguard.ts";
import { prepDomain, prepNode, split } from "./core/jid.ts";
import { setupLogging, stopLogging } from "./core/log.ts";
import { ModuleManager } from "./core/modulemanager.ts";
import { certificateInfo, findCertificate, generateSelfSigned } from "./core/net/certs.ts";
import { Server } from "./core/server.ts";
import { UserError } from "./core/usermanager.ts";
import { CADENCE_VERSION } from "./core/version.ts";

/** A mistake of the person at the keyboard: one line, exit 1. */
class UsageError extends Error {}

interface Command {
  usage: string;
  summary: string;
  args: string[];
  run(args: string[], configPath: string | undefined, flags: Flags): Promise<number | void>;
}

interface Flags {
  force: boolean;
}

const COMMANDS: Record<string, Command> = {
  start: {
    usage: "start [--config FILE]",
    summary: "run the server (the default command)",
    args: [],
    run: start,
  },
  register: {
    usage: "register USER HOST PASSWORD [--config FILE]",
    summary: "create an account",
    args: ["USER", "HOST", "PASSWORD"],
    run: ([user, host, password], config) => register(user, host, password, config),
  },
  adduser: {
    usage: "adduser JID [--config FILE]",
    summary: "create an account, asking for the password twice",
    args: ["JID"],
    run: ([jid], config) => adduser(jid, config),
  },
  passwd: {
    usage: "passwd JID [--config FILE]",
    summary: "change a password, asking for the new one twice",
    args: ["JID"],
    run: ([jid], config) => passwd(jid, config),
  },
  deluser: {
    usage: "deluser JID [--config FILE]",
    summary: "delete an account and everything stored for it",
    args: ["JID"],
    run: ([jid], config) => deluser(jid, config),
  },
  check: {
    usage: "check [--config FILE]",
    summary: "check the configuration, the certificates and that the ports are free",
    args: [],
    run: (_, config) => check(config),
  },
  cert: {
    usage: "cert generate HOST [--force] [--config FILE]",
    summary: "write a self-signed certificate for HOST into the data directory",
    args: ["generate", "HOST"],
    run: ([sub, host], config, flags) => certGenerate(sub, host, config, flags.force),
  },
  about: {
    usage: "about",
    summary: "versions of Cadence, Deno and the dependencies",
    args: [],
    run: about,
  },
  help: {
    usage: "help [COMMAND]",
    summary: "this list, or the usage of one command",
    args: [],
    run: (args) => {
      if (args.length === 0) console.log(help());
      else {
        const command = COMMANDS[args[0]];
        if (!command || args.length > 1) throw new UsageError(`usage: ${COMMANDS.help.usage}`);
        console.log(commandHelp(command));
      }
      return Promise.resolve();
    },
  },
};

function commandHelp(command: Command): string {
  return `usage: deno run -A main.ts ${command.usage}\n\n${command.summary}`;
}

function help(): string {
  const lines = [
    `Cadence ${CADENCE_VERSION}, an XMPP server`,
    "",
    "usage: deno run -A main.ts [COMMAND] [ARGS...] [--config FILE]",
    "",
    "commands:",
  ];
  for (const c of Object.values(COMMANDS)) lines.push(`  ${c.usage.padEnd(46)} ${c.summary}`);
  lines.push("", "Run `deno run -A main.ts help COMMAND` (or COMMAND --help) for one command.");
  return lines.join("\n");
}

function parseCommandLine(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      config: { type: "string", short: "c" },
      help: { type: "boolean", short: "h" },
      force: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  return {
    configPath: values.config,
    help: values.help ?? false,
    force: values.force ?? false,
    positionals,
  };
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandLine(argv);
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split("\n")[0]} (see --help)`);
  }
  if (parsed.help && parsed.positionals.length === 0) {
    console.log(help());
    return 0;
  }
  const [name = "start", ...args] = parsed.positionals;
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command "${name}" (see --help)`);
  if (parsed.help) {
    console.log(commandHelp(command));
    return 0;
  }
  if (parsed.force && name !== "cert") throw new UsageError(`--force is only for cert generate`);
  if (name !== "start" && name !== "help" && args.length !== command.args.length) {
    throw new UsageError(`usage: ${command.usage}`);
  }
  if (name === "start" && args.length > 0) throw new UsageError(`usage: ${command.usage}`);
  return (await command.run(args, configFile(parsed.configPath), parsed)) ?? 0;
}

/** The configuration file to read: --config, $CADENCE_CONFIG, ./cadence.config.ts, or none. */
function configFile(flag: string | undefined): string | undefined {
  if (flag !== undefined) return flag;
  const env = Deno.env.get("CADENCE_CONFIG");
  if (env) return env;
  const local = resolve("cadence.config.ts");
  return existsSync(local) ? local : undefined;
}

function loadConfig(path: string | undefined): Promise<ResolvedConfig> {
  return readConfig(path, ModuleManager.builtinDir);
}

/** One line saying where the configuration came from. */
function describeConfig(config: ResolvedConfig): string {
  const where = config.configPath ??
    "the embedded defaults (no --config, $CADENCE_CONFIG or ./cadence.config.ts)";
  return config.defaultHost && config.configPath
    ? `${where}; it names no virtual_hosts, so localhost is served (add virtual_hosts: { "example.com": {} })`
    : where;
}

function logOptions(config: ResolvedConfig) {
  const log = config.global("log");
  return typeof log === "string" ? { level: log as "info" } : log as { level?: "info" };
}

// --- start ------------------------------------------------------------------

async function start(_: string[], configPath: string | undefined): Promise<number> {
  const config = await loadConfig(configPath);
  await setupLogging(logOptions(config));
  const server = new Server(config);
  guardProcess(server.log);
  server.log.info("configuration: {config}", { config: describeConfig(config) });
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    stopping ??= server.stop(`received ${signal}`).then(async () => {
      await stopLogging();
      Deno.exit(0);
    });
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  // SIGHUP: the configuration read again and put in force, log files reopened.
  let reloading = Promise.resolve();
  Deno.addSignalListener("SIGHUP", () => {
    reloading = reloading.then(() => reload(server, configPath));
  });
  try {
    await server.start();
  } catch (e) {
    await server.stop("start-up failed").catch(() => {});
    throw e;
  }
  server.log.info("Cadence {version} serving {hosts}", {
    version: CADENCE_VERSION,
    hosts: config.hosts.join(", "),
  });
  await new Promise(() => {}); // until a signal arrives
  return 0;
}

/** Reads the configuration again and puts it in force; a mistake leaves the old one running. */
async function reload(server: Server, configPath: string | undefined): Promise<void> {
  let next: ResolvedConfig;
  try {
    next = await loadConfig(configPath);
  } catch (e) {
    server.log.error("configuration not reloaded, the server goes on as it was: {error}", {
      error: (e as Error).message,
    });
    return;
  }
  try {
    await server.reload(next);
    await setupLogging(logOptions(next)); // reopens log files (after logrotate)
    server.log.info("configuration reloaded: {config}", { config: describeConfig(next) });
  } catch (e) {
    server.log.error("configuration reload failed: {error}", { error: e });
  }
}

// --- accounts ---------------------------------------------------------------

/** Runs `fn` with the server's storage and hosts active but no port open. */
async function withServer<T>(
  configPath: string | undefined,
  fn: (server: Server) => Promise<T>,
): Promise<T> {
  const config = await loadConfig(configPath);
  await setupLogging({ level: "warn" });
  const server = new Server(config);
  try {
    await server.activate();
    return await fn(server);
  } finally {
    await server.stop("command done");
    await stopLogging();
  }
}

function parseUserJid(jid: string): { user: string; host: string } {
  const parts = split(jid);
  const user = parts?.node === undefined ? undefined : prepNode(parts.node);
  if (!parts || user === undefined || parts.resource !== undefined) {
    throw new UsageError(`"${jid}" is not a valid user JID (expected user@host)`);
  }
  return { user, host: parts.host.toLowerCase() };
}

function usersOf(server: Server, host: string) {
  const users = server.users(host);
  if (!users) {
    throw new UsageError(
      `host "${host}" is not a VirtualHost of this server (hosts: ${
        server.config.hosts.join(", ")
      })`,
    );
  }
  return users;
}

async function register(
  rawUser: string,
  host: string,
  password: string,
  configPath?: string,
): Promise<void> {
  const { user } = parseUserJid(`${rawUser}@${host}`);
  if (password === "") throw new UsageError("the password must not be empty");
  await withServer(configPath, async (server) => {
    await usersOf(server, host.toLowerCase()).createUser(user, password);
  });
  console.log(`created ${user}@${host.toLowerCase()}`);
}

/** Reads a line from stdin without echo when it is a terminal. */
async function readPassword(prompt: string): Promise<string> {
  const out = Deno.stderr;
  const enc = new TextEncoder();
  out.writeSync(enc.encode(prompt));
  const tty = Deno.stdin.isTerminal();
  if (tty) Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const buf = new Uint8Array(1);
  try {
    while (true) {
      const n = await Deno.stdin.read(buf);
      if (n === null) {
        if (bytes.length === 0) throw new UsageError("no password given");
        break;
      }
      const b = buf[0];
      if (b === 10 || b === 13) break;
      if (b === 3) throw new UsageError("interrupted");
      if (b === 127 || b === 8) bytes.pop();
      else bytes.push(b);
    }
  } finally {
    if (tty) Deno.stdin.setRaw(false);
    out.writeSync(enc.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

async function askNewPassword(): Promise<string> {
  const first = await readPassword("Password: ");
  const second = await readPassword("Again: ");
  if (first !== second) throw new UsageError("the passwords do not match");
  if (first === "") throw new UsageError("the password must not be empty");
  return first;
}

async function adduser(jid: string, configPath?: string): Promise<void> {
  const { user, host } = parseUserJid(jid);
  const password = await askNewPassword();
  await withServer(configPath, async (server) => {
    await usersOf(server, host).createUser(user, password);
  });
  console.log(`created ${user}@${host}`);
}

async function passwd(jid: string, configPath?: string): Promise<void> {
  const { user, host } = parseUserJid(jid);
  await withServer(configPath, async (server) => {
    const users = usersOf(server, host);
    if (!await users.userExists(user)) throw new UserError(`user ${user}@${host} does not exist`);
    await users.setPassword(user, await askNewPassword());
  });
  console.log(`changed the password of ${user}@${host}`);
}

async function deluser(jid: string, configPath?: string): Promise<void> {
  const { user, host } = parseUserJid(jid);
  await withServer(configPath, async (server) => {
    await usersOf(server, host).deleteUser(user);
  });
  console.log(`deleted ${user}@${host}`);
}

// --- check, cert, about -------------------------------------------------------

function portFree(port: number, iface: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", (e) => resolve((e as Error).message));
    const opts = iface === "*" ? { port } : { port, host: iface };
    srv.listen(opts, () => srv.close(() => resolve(undefined)));
  });
}

async function check(configPath?: string): Promise<number> {
  let failures = 0;
  const ok = (msg: string) => console.log(`ok    ${msg}`);
  const bad = (msg: string) => {
    failures++;
    console.log(`FAIL  ${msg}`);
  };
  let config: ResolvedConfig;
  try {
    config = await loadConfig(configPath);
    ok(`configuration: ${describeConfig(config)}`);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    bad(e.message);
    return 1;
  }
  for (const host of config.hosts) {
    const paths = findCertificate(config, host);
    if (!paths) {
      ok(`${host}: no certificate yet; a self-signed one will be generated on start`);
      continue;
    }
    try {
      const info = certificateInfo(await Deno.readTextFile(paths.certPath));
      await Deno.stat(paths.keyPath);
      if (info.notAfter.getTime() < Date.now()) {
        bad(`${host}: certificate ${paths.certPath} expired on ${info.notAfter.toISOString()}`);
      } else {
        ok(`${host}: certificate ${paths.certPath} valid until ${info.notAfter.toISOString()}`);
      }
    } catch (e) {
      bad(`${host}: certificate ${paths.certPath}: ${(e as Error).message}`);
    }
  }
  const interfaces = config.global("interfaces") as string[];
  const ports = [
    ...(config.global("c2s_ports") as number[]),
    ...(config.global("c2s_direct_tls_ports") as number[]),
  ];
  for (const port of ports) {
    for (const iface of interfaces) {
      const err = await portFree(port, iface);
      if (err) bad(`port ${port} on ${iface}: ${err}`);
      else ok(`port ${port} on ${iface} is free`);
    }
  }
  return failures ? 1 : 0;
}

async function certGenerate(
  sub: string,
  rawHost: string,
  configPath: string | undefined,
  force: boolean,
): Promise<void> {
  if (sub !== "generate") throw new UsageError(`usage: ${COMMANDS.cert.usage}`);
  const host = prepDomain(rawHost);
  if (host === undefined) throw new UsageError(`"${rawHost}" is not a valid host name`);
  const config = await loadConfig(configPath);
  const dir = join(config.dataPath, "certs");
  const existing = join(dir, `${host}.crt`);
  if (existsSync(existing) && !force) {
    throw new UsageError(
      `a certificate for ${host} exists already (${existing}); add --force to replace it`,
    );
  }
  if (!config.hosts.includes(host)) {
    console.error(
      `cadence: warning: ${host} is not a VirtualHost of this configuration ` +
        `(hosts: ${config.hosts.join(", ")}); the server will not use this certificate`,
    );
  }
  const { certPath, keyPath } = await generateSelfSigned(host, dir);
  console.log(`certificate: ${certPath}\nkey:         ${keyPath}`);
}

async function about(): Promise<void> {
  const denoJson = JSON.parse(
    await Deno.readTextFile(new URL("./deno.json", import.meta.url)),
  ) as { version: string; imports: Record<string, string> };
  console.log(`Cadence     ${denoJson.version}`);
  console.log(`Deno        ${Deno.version.deno}`);
  console.log(`V8          ${Deno.version.v8}`);
  console.log(`TypeScript  ${Deno.version.typescript}`);
  console.log(`Platform    ${Deno.build.os} ${Deno.build.arch}`);
  console.log("Dependencies:");
  for (const [name, spec] of Object.entries(denoJson.imports)) {
    console.log(`  ${name.padEnd(20)} ${spec}`);
  }
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main(Deno.args);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof UserError) {
      console.error(`cadence: ${e.message}`);
    } else {
      console.error(`cadence: ${(e as Error)?.message ?? e}`);
      if (Deno.env.get("CADENCE_DEBUG")) console.error(e);
    }
    Deno.exitCode = 1;
  }
}
