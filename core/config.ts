/**
 * Configuration in TypeScript, with Prosody's option names unchanged.
 *
 * A configuration file is a `.ts` module whose default export is the
 * configuration object; {@link defineConfig} gives it types. Global options
 * sit at the top level, hosts under `virtual_hosts`, components under
 * `components`. A host's options override the global ones, except that its
 * `modules_enabled` adds to the global list and its `modules_disabled`
 * removes from it (Prosody's rule).
 *
 * @example
 * ```ts
 * // cadence.config.ts
 * import { defineConfig } from "./core/config.ts";
 * export default defineConfig({
 *   virtual_hosts: { "example.com": {} },
 *   c2s_ports: [5222],
 * });
 * ```
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { prepDomain } from "./jid.ts";
import { locateModule } from "./modulelocator.ts";

/** Options valid globally and per host. */
export interface HostOptions {
  admins?: string[];
  modules_enabled?: string[];
  modules_disabled?: string[];
  /** "internal_hashed" (default), "internal_plain", "insecure", or a custom auth_<name> module. */
  authentication?: string;
  insecure_open_authentication?: string;
  c2s_require_encryption?: boolean;
  allow_unencrypted_plain_auth?: boolean;
  ssl?: { certificate: string; key: string };
  allow_registration?: boolean;
  contact_info?: Record<string, string[]>;
  conflict_resolve?: "kick_old" | "kick_new";
  hide_os_type?: boolean;
  server_name?: string;
  disco_items?: Array<{ jid: string; name?: string } | [string, string?]>;
  /** Most resources one account may bind at once; default 10. */
  max_user_sessions?: number;
  /** SASL mechanisms not to offer, e.g. ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"]. */
  disable_sasl_mechanisms?: string[];
  /** Options of modules, read with `module.getOption()`. */
  [option: string]: unknown;
}

/** The whole configuration. */
export interface Config extends HostOptions {
  plugin_paths?: string[];
  interfaces?: string[];
  c2s_ports?: number[];
  c2s_direct_tls_ports?: number[];
  c2s_interfaces?: string[];
  c2s_stanza_size_limit?: number;
  /** Stanza size limit before authentication; default 10,000. */
  c2s_unauthed_stanza_size_limit?: number;
  c2s_timeout?: number;
  c2s_close_timeout?: number;
  /** Connections from one address that have not bound a resource yet; default 32. */
  c2s_max_unauthed_per_ip?: number;
  /** Client connections in all; default the open-file limit less 100. */
  c2s_max_connections?: number;
  /** Bytes waiting for a slow reader before its stream is closed; default 1 MiB. */
  max_send_buffer_size?: number;
  /** Seconds output may wait with nothing taken by the client before its stream is closed; default 180. */
  send_timeout?: number;
  /** Inbound rate limits, as Prosody's mod_limits: `{ c2s: { rate: "100kb/s", burst: "2s" } }`; false: none. */
  limits?: Record<string, { rate?: string | number; burst?: string | number } | false> | false;
  /** JIDs the rate limits do not apply to. */
  unlimited_jids?: string[];
  storage?: string | Record<string, string>;
  default_storage?: string;
  data_path?: string;
  certificates?: string;
  log?: "debug" | "info" | "warn" | "error" | {
    level?: "debug" | "info" | "warn" | "error";
    file?: string;
  };
  virtual_hosts?: Record<string, HostOptions>;
  /** Internal components name their module; external ones (XEP-0114) their `component_secret`. */
  components?: Record<string, HostOptions & { module?: string; component_secret?: string }>;
  /** Where external components connect (XEP-0114); default [5347] on 127.0.0.1. */
  component_ports?: number[];
  component_interfaces?: string[];
}

/** Gives a configuration object its type (and the editor its autocompletion). */
export function defineConfig(config: Config): Config {
  return config;
}

/** A configuration mistake, with a message naming the option and what was expected. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * The modules of Prosody's default configuration; those Cadence does not
 * have yet are skipped quietly (a module named explicitly must exist).
 */
export const DEFAULT_MODULES = [
  "roster",
  "saslauth",
  "tls",
  "disco",
  "carbons",
  "private",
  "blocklist",
  "vcard",
  "version",
  "uptime",
  "time",
  "ping",
  "register",
  "pep",
  "bookmarks",
  "vcard4",
  "vcard_legacy",
  "smacks",
  "csi",
  "cloud_notify",
  // Not in Prosody's default list (mam is commented out there), but on by default in Cadence:
  "mam",
  "lastactivity",
  "server_contact_info",
  // Prosody 13 leaves websocket and bosh to the admin; Cadence has no reason to hide them.
  "websocket",
  "bosh",
  "host_meta",
];

/**
 * Always loaded on a VirtualHost, as Prosody's autoload list (s2s too, so the
 * server federates unless `modules_disabled: ["s2s"]`).
 */
export const AUTOLOAD_MODULES = ["c2s", "s2s", "iq", "presence", "message", "offline"];

/** Defaults of the options the core reads. */
export const DEFAULTS: Record<string, unknown> = {
  admins: [],
  plugin_paths: [],
  interfaces: ["*"],
  c2s_ports: [5222],
  c2s_direct_tls_ports: [5223],
  c2s_require_encryption: true,
  allow_unencrypted_plain_auth: false,
  authentication: "internal_hashed",
  storage: "sqlite",
  data_path: "./data",
  certificates: "certs",
  c2s_stanza_size_limit: 256 * 1024,
  c2s_unauthed_stanza_size_limit: 10_000,
  c2s_timeout: 300,
  c2s_close_timeout: 5,
  c2s_max_unauthed_per_ip: 32,
  max_send_buffer_size: 1 << 20,
  send_timeout: 180,
  max_user_sessions: 10,
  log: "info",
  conflict_resolve: "kick_old",
  hide_os_type: false,
  allow_registration: false,
};

/** The embedded defaults: one VirtualHost, `localhost`. */
export const EMBEDDED_CONFIG: Config = { virtual_hosts: { localhost: {} } };

/** The host served when a configuration names none. */
export const DEFAULT_HOST = "localhost";

type Check = (v: unknown) => string | undefined;

const isStringArray = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
const isPort = (x: unknown) => Number.isInteger(x) && (x as number) >= 1 && (x as number) <= 65535;
const LEVELS = ["debug", "info", "warn", "error"];

const stringArray: Check = (v) => isStringArray(v) ? undefined : "an array of strings";
const boolean: Check = (v) => typeof v === "boolean" ? undefined : "true or false";
const string: Check = (v) => typeof v === "string" ? undefined : "a string";
const ports: Check = (v) =>
  Array.isArray(v) && v.every(isPort) ? undefined : "an array of port numbers (1-65535)";
const positive: Check = (v) => typeof v === "number" && v > 0 ? undefined : "a positive number";
const oneOf = (...allowed: string[]): Check => (v) =>
  typeof v === "string" && allowed.includes(v)
    ? undefined
    : `one of ${allowed.map((a) => `"${a}"`).join(", ")}`;

/** Type checks of the options the core knows. Unknown options pass through for modules. */
const CHECKS: Record<string, Check> = {
  admins: stringArray,
  modules_enabled: stringArray,
  modules_disabled: stringArray,
  plugin_paths: stringArray,
  interfaces: stringArray,
  c2s_ports: ports,
  c2s_direct_tls_ports: ports,
  c2s_require_encryption: boolean,
  allow_unencrypted_plain_auth: boolean,
  authentication: string,
  insecure_open_authentication: string,
  storage: (v) =>
    typeof v === "string" ||
      (v !== null && typeof v === "object" && !Array.isArray(v) &&
        Object.values(v).every((x) => typeof x === "string"))
      ? undefined
      : "a driver name or an object mapping store names to driver names",
  default_storage: string,
  data_path: string,
  certificates: string,
  ssl: (v) =>
    v !== null && typeof v === "object" &&
      typeof (v as Record<string, unknown>).certificate === "string" &&
      typeof (v as Record<string, unknown>).key === "string"
      ? undefined
      : "{ certificate: string, key: string }",
  c2s_interfaces: stringArray,
  component_ports: ports,
  component_interfaces: stringArray,
  s2s_ports: ports,
  s2s_interfaces: stringArray,
  s2s_require_encryption: boolean,
  s2s_timeout: positive,
  s2s_connect_timeout: positive,
  s2s_dns_server: string,
  s2s_direct_tls_ports: ports,
  s2s_secure_auth: boolean,
  s2s_secure_domains: stringArray,
  s2s_insecure_domains: stringArray,
  s2s_cafile: string,
  http_ports: ports,
  https_ports: ports,
  http_interfaces: stringArray,
  https_interfaces: stringArray,
  http_external_url: string,
  trusted_proxies: stringArray,
  http_max_content_size: positive,
  consider_websocket_secure: boolean,
  component_secret: string,
  c2s_stanza_size_limit: positive,
  c2s_unauthed_stanza_size_limit: positive,
  c2s_timeout: positive,
  c2s_close_timeout: positive,
  c2s_max_unauthed_per_ip: positive,
  c2s_max_connections: positive,
  max_send_buffer_size: positive,
  send_timeout: positive,
  max_user_sessions: positive,
  unlimited_jids: stringArray,
  disable_sasl_mechanisms: stringArray,
  limits: (v) =>
    v === false || (v !== null && typeof v === "object" && !Array.isArray(v) &&
        Object.values(v).every((l) => l === false || (l !== null && typeof l === "object")))
      ? undefined
      : '{ c2s: { rate: "100kb/s", burst: "2s" } } or false',
  log: (v) =>
    (typeof v === "string" && LEVELS.includes(v)) ||
      (v !== null && typeof v === "object" && !Array.isArray(v) &&
        ((v as Record<string, unknown>).level === undefined ||
          LEVELS.includes((v as Record<string, unknown>).level as string)) &&
        ((v as Record<string, unknown>).file === undefined ||
          typeof (v as Record<string, unknown>).file === "string"))
      ? undefined
      : `a level (${LEVELS.join(", ")}) or { level, file }`,
  conflict_resolve: oneOf("kick_old", "kick_new"),
  hide_os_type: boolean,
  allow_registration: boolean,
  server_name: string,
};

/** Options that only make sense for the whole server. */
const GLOBAL_ONLY = new Set([
  "plugin_paths",
  "interfaces",
  "c2s_ports",
  "c2s_direct_tls_ports",
  "c2s_interfaces",
  "component_ports",
  "component_interfaces",
  "s2s_ports",
  "s2s_interfaces",
  "s2s_dns_server",
  "s2s_direct_tls_ports",
  "s2s_cafile",
  "http_ports",
  "https_ports",
  "http_interfaces",
  "https_interfaces",
  "trusted_proxies",
  "c2s_max_connections",
  "c2s_max_unauthed_per_ip",
  "max_send_buffer_size",
  "send_timeout",
  "limits",
  "storage",
  "default_storage",
  "data_path",
  "log",
  "virtual_hosts",
  "components",
]);

/** The validated configuration, with Prosody's inheritance rules applied. */
export interface ResolvedConfig {
  raw: Config;
  /** The file it came from, if any. */
  configPath?: string;
  /** Relative paths in the configuration are relative to this directory. */
  configDir: string;
  /** Absolute data directory. */
  dataPath: string;
  hosts: string[];
  /** True when the configuration named no `virtual_hosts` and `localhost` is served. */
  defaultHost: boolean;
  components: string[];
  /** A global option, or its default. */
  global(name: string): unknown;
  /** An option for a host: the host's value, else the global one, else the default. */
  get(host: string, name: string): unknown;
  /** Modules to load on a host, in a deterministic order. */
  modulesFor(host: string): string[];
}

let reads = 0;

/**
 * Loads a configuration file (no path: the embedded defaults). Each call reads
 * the file as it is now: Deno caches modules by URL, so each import gets its own.
 */
export async function loadConfig(path?: string): Promise<{ config: Config; path?: string }> {
  if (path === undefined) return { config: structuredClone(EMBEDDED_CONFIG) };
  const full = resolve(path);
  if (!existsSync(full)) throw new ConfigError(`config file ${path} not found`);
  let mod: { default?: unknown };
  try {
    const url = pathToFileURL(full);
    if (reads++ > 0) url.searchParams.set("read", String(reads));
    mod = await import(url.href);
  } catch (e) {
    const first = String((e as Error).message ?? e).split("\n")[0];
    throw new ConfigError(`config file ${path} cannot be loaded: ${first}`);
  }
  const c = mod.default;
  if (c === null || typeof c !== "object" || Array.isArray(c)) {
    throw new ConfigError(
      `config file ${path} must have a default export: the configuration object ` +
        "(export default defineConfig({ ... }))",
    );
  }
  return { config: c as Config, path: full };
}

function checkOptions(
  options: Record<string, unknown>,
  where: string,
  isGlobal: boolean,
): void {
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (!isGlobal && GLOBAL_ONLY.has(name)) {
      throw new ConfigError(`config option "${name}" (${where}) can only be set globally`);
    }
    const expected = CHECKS[name]?.(value);
    if (expected) {
      throw new ConfigError(
        `config option "${name}" (${where}): expected ${expected}, got ${
          JSON.stringify(value) ?? String(value)
        }`,
      );
    }
  }
}

function readable(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Checks a configuration and applies the inheritance rules. Throws a
 * {@link ConfigError} naming the option, where it was set, what was expected
 * and what was found.
 */
export function validateConfig(
  raw: Config,
  opts: { configDir: string; builtinModulesDir: string; configPath?: string },
): ResolvedConfig {
  if (raw === null || typeof raw !== "object") {
    throw new ConfigError("the configuration must be an object");
  }
  const { components: comps, ...globals } = raw;
  delete (globals as Config).virtual_hosts;
  checkOptions(globals, "global", true);
  // A file that sets only ports or data_path still serves localhost, as with no file at all.
  const defaultHost = raw.virtual_hosts === undefined;
  const vhosts = raw.virtual_hosts ?? { [DEFAULT_HOST]: {} };
  if (vhosts === null || typeof vhosts !== "object" || Object.keys(vhosts).length === 0) {
    throw new ConfigError(
      'config option "virtual_hosts": expected at least one host, e.g. { "example.com": {} }',
    );
  }
  const hostOptions = new Map<string, HostOptions>();
  for (const [name, options] of Object.entries(vhosts)) {
    const host = prepDomain(name);
    if (host === undefined || host !== name) {
      throw new ConfigError(
        `config option "virtual_hosts": "${name}" is not a valid lower-case domain name`,
      );
    }
    if (options === null || typeof options !== "object") {
      throw new ConfigError(`config option "virtual_hosts" ("${name}"): expected an object`);
    }
    checkOptions(options, `host "${name}"`, false);
    hostOptions.set(name, options);
  }
  for (const [name, options] of Object.entries(comps ?? {})) {
    if (prepDomain(name) !== name) {
      throw new ConfigError(`config option "components": "${name}" is not a valid domain name`);
    }
    if (hostOptions.has(name)) {
      throw new ConfigError(`config option "components": "${name}" is also a VirtualHost`);
    }
    // An external component (XEP-0114) names no module, only its secret, as in Prosody.
    if (
      options !== null && typeof options === "object" && options.module === undefined &&
      typeof (options as Record<string, unknown>).component_secret === "string"
    ) {
      options.module = "component";
    }
    if (typeof options?.module !== "string") {
      throw new ConfigError(
        `config option "components" ("${name}"): expected { module: "<module name>", ... } ` +
          `or, for an external component, { component_secret: "..." }`,
      );
    }
    checkOptions(options, `component "${name}"`, false);
    hostOptions.set(name, options);
  }

  const configDir = opts.configDir;
  const global = (name: string): unknown => raw[name] ?? DEFAULTS[name];
  const get = (host: string, name: string): unknown =>
    hostOptions.get(host)?.[name] ?? global(name);
  const dataPath = resolve(configDir, String(global("data_path")));
  const pluginPaths = (global("plugin_paths") as string[]).map((p) => resolve(configDir, p));
  const exists = (m: string) => locateModule(m, pluginPaths, opts.builtinModulesDir) !== undefined;
  const components = Object.keys(comps ?? {});

  const modulesFor = (host: string): string[] => {
    const h = hostOptions.get(host) ?? {};
    const isComponent = components.includes(host);
    const explicitGlobal = raw.modules_enabled;
    const out: string[] = [];
    const add = (m: string, quiet: boolean) => {
      if (out.includes(m)) return;
      if (quiet && !exists(m)) return;
      out.push(m);
    };
    if (isComponent) add((h as { module: string }).module, false);
    else {
      for (const m of AUTOLOAD_MODULES) add(m, true);
      for (const m of explicitGlobal ?? DEFAULT_MODULES) add(m, explicitGlobal === undefined);
    }
    for (const m of h.modules_enabled ?? []) add(m, false);
    const disabled = new Set([...(raw.modules_disabled ?? []), ...(h.modules_disabled ?? [])]);
    // A host's own modules_enabled wins over a global modules_disabled.
    for (const m of h.modules_enabled ?? []) {
      if (!(h.modules_disabled ?? []).includes(m)) {
        disabled.delete(m);
      }
    }
    return out.filter((m) => !disabled.has(m));
  };

  // Every module named explicitly must exist; every configured certificate must be readable.
  for (const host of hostOptions.keys()) {
    for (const m of modulesFor(host)) {
      if (!exists(m)) {
        throw new ConfigError(
          `config option "modules_enabled" (${
            components.includes(host) ? `component "${host}"` : `host "${host}"`
          }): unknown module "${m}" (not in plugin_paths or modules/)`,
        );
      }
    }
    const auth = get(host, "authentication");
    if (!components.includes(host) && !exists("auth_" + auth)) {
      throw new ConfigError(
        `config option "authentication" (host "${host}"): unknown provider "${auth}"; ` +
          'expected "internal_hashed", "internal_plain" or "insecure"',
      );
    }
    const ssl = get(host, "ssl") as { certificate: string; key: string } | undefined;
    if (ssl) {
      for (const which of ["certificate", "key"] as const) {
        const file = resolve(configDir, ssl[which]);
        if (!readable(file)) {
          throw new ConfigError(
            `config option "ssl.${which}" (host "${host}"): file ${file} does not exist or is not readable`,
          );
        }
      }
    }
  }

  const cafile = raw.s2s_cafile;
  if (typeof cafile === "string" && !readable(resolve(configDir, cafile))) {
    throw new ConfigError(
      `config option "s2s_cafile": file ${
        resolve(configDir, cafile)
      } does not exist or is not readable`,
    );
  }

  return {
    raw,
    configPath: opts.configPath,
    configDir,
    dataPath,
    hosts: Object.keys(vhosts),
    defaultHost,
    components,
    global,
    get,
    modulesFor,
  };
}

/** Loads and validates in one step, with paths relative to the config file. */
export async function readConfig(
  path: string | undefined,
  builtinModulesDir: string,
): Promise<ResolvedConfig> {
  const { config, path: full } = await loadConfig(path);
  const configDir = full ? dirname(full) : Deno.cwd();
  return validateConfig(config, {
    configDir: isAbsolute(configDir) ? configDir : resolve(configDir),
    builtinModulesDir,
    configPath: full,
  });
}
