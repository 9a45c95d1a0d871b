import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  AUTOLOAD_MODULES,
  type Config,
  ConfigError,
  loadConfig,
  readConfig,
  validateConfig,
} from "../../core/config.ts";
import { ModuleManager } from "../../core/modulemanager.ts";

const builtinModulesDir = ModuleManager.builtinDir;
const opts = { configDir: "/tmp", builtinModulesDir };
const validate = (c: Config) => validateConfig(c, opts);
const base: Config = { virtual_hosts: { localhost: {} } };

Deno.test("config.example.ts is a valid configuration whose values are the defaults", async () => {
  const example = fileURLToPath(new URL("../../config.example.ts", import.meta.url));
  const c = await readConfig(example, builtinModulesDir);
  const defaults = validate(base);
  for (const name of Object.keys(c.raw)) {
    if (name === "virtual_hosts" || name === "components") continue;
    assert.deepEqual(c.global(name), defaults.global(name) ?? c.global(name), name);
  }
  assert.deepEqual(c.modulesFor("localhost"), defaults.modulesFor("localhost"));
});

Deno.test("embedded defaults: localhost, the default module set", async () => {
  const { config } = await loadConfig();
  const c = validate(config);
  assert.deepEqual(c.hosts, ["localhost"]);
  assert.deepEqual(c.global("c2s_ports"), [5222]);
  assert.deepEqual(c.global("c2s_direct_tls_ports"), [5223]);
  assert.equal(c.get("localhost", "authentication"), "internal_hashed");
  const mods = c.modulesFor("localhost");
  for (const m of ["c2s", "iq", "saslauth", "tls", "disco", "ping", "version", "time", "uptime"]) {
    assert.ok(mods.includes(m), m);
  }
});

Deno.test("host modules_enabled adds to the global list, modules_disabled removes", () => {
  const c = validate({
    modules_enabled: ["saslauth", "tls", "ping", "version"],
    modules_disabled: ["version"],
    virtual_hosts: {
      "a.example": { modules_enabled: ["time"] },
      "b.example": { modules_disabled: ["ping"] },
    },
  });
  const own = (host: string) => c.modulesFor(host).filter((m) => !AUTOLOAD_MODULES.includes(m));
  assert.deepEqual(own("a.example"), ["saslauth", "tls", "ping", "time"]);
  assert.deepEqual(own("b.example"), ["saslauth", "tls"]);
  assert.deepEqual(c.modulesFor("b.example").slice(0, 3), ["c2s", "s2s", "iq"]);
  assert.equal(c.get("a.example", "c2s_require_encryption"), true);
});

Deno.test("per-host options override global ones", () => {
  const c = validate({
    authentication: "internal_plain",
    virtual_hosts: { "a.example": { authentication: "internal_hashed" }, "b.example": {} },
  });
  assert.equal(c.get("a.example", "authentication"), "internal_hashed");
  assert.equal(c.get("b.example", "authentication"), "internal_plain");
});

Deno.test("mistakes stop start-up with a message naming the option", () => {
  const cases: [Config, RegExp][] = [
    [
      { ...base, c2s_ports: "5222" as unknown as number[] },
      /"c2s_ports" \(global\): expected an array of port numbers \(1-65535\), got "5222"/,
    ],
    [{ ...base, c2s_ports: [70000] }, /"c2s_ports".*port numbers/],
    [
      { ...base, c2s_require_encryption: "yes" as unknown as boolean },
      /"c2s_require_encryption" \(global\): expected true or false/,
    ],
    [{ ...base, log: "loud" as "info" }, /"log" \(global\): expected a level/],
    [{ ...base, modules_enabled: ["no_such_module"] }, /unknown module "no_such_module"/],
    [
      { virtual_hosts: { localhost: { modules_enabled: ["nope"] } } },
      /host "localhost"\): unknown module "nope"/,
    ],
    [
      { ...base, authentication: "ldap" },
      /"authentication" \(host "localhost"\): unknown provider "ldap"/,
    ],
    [{
      virtual_hosts: {
        localhost: { ssl: { certificate: "/nonexistent.crt", key: "/nonexistent.key" } },
      },
    }, /"ssl.certificate" \(host "localhost"\): file \/nonexistent.crt does not exist/],
    [{ virtual_hosts: {} }, /"virtual_hosts": expected at least one host/],
    [{ virtual_hosts: { "Not A Host!": {} } }, /not a valid lower-case domain name/],
    [
      { virtual_hosts: { localhost: { c2s_ports: [1] } } },
      /"c2s_ports" \(host "localhost"\) can only be set globally/,
    ],
    [
      { ...base, components: { "muc.localhost": {} as { module: string } } },
      /"components" \("muc.localhost"\): expected \{ module/,
    ],
  ];
  for (const [config, message] of cases) {
    assert.throws(() => validate(config), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `ConfigError for ${message}`);
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("config files: missing, broken, without a default export", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-config-" });
  try {
    await assert.rejects(() => loadConfig(`${dir}/none.ts`), /config file .*none.ts not found/);
    await Deno.writeTextFile(`${dir}/broken.ts`, "export default {{");
    await assert.rejects(() => loadConfig(`${dir}/broken.ts`), /cannot be loaded/);
    await Deno.writeTextFile(`${dir}/nodefault.ts`, "export const x = 1;");
    await assert.rejects(() => loadConfig(`${dir}/nodefault.ts`), /must have a default export/);
    await Deno.writeTextFile(
      `${dir}/ok.ts`,
      `export default { virtual_hosts: { "example.com": {} }, data_path: "d" };`,
    );
    const c = await readConfig(`${dir}/ok.ts`, builtinModulesDir);
    assert.deepEqual(c.hosts, ["example.com"]);
    assert.equal(c.dataPath, `${dir}/d`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a configuration that names no virtual_hosts serves localhost and says so", () => {
  const config = validateConfig({ data_path: "d", c2s_ports: [5999] }, {
    configDir: "/tmp",
    builtinModulesDir: ModuleManager.builtinDir,
  });
  assert.deepEqual(config.hosts, ["localhost"]);
  assert.equal(config.defaultHost, true);
  const named = validateConfig(base, {
    configDir: "/tmp",
    builtinModulesDir: ModuleManager.builtinDir,
  });
  assert.equal(named.defaultHost, false);
});
