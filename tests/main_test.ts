/** The admin CLI, run as a user runs it: a subprocess, exit codes and one-line errors. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

async function cadence(args: string[], stdin?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await child.output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

async function withConfig(fn: (config: string, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cadence-cli-" });
  const config = `${dir}/cadence.config.ts`;
  await Deno.writeTextFile(
    config,
    `export default { virtual_hosts: { localhost: {} }, interfaces: ["127.0.0.1"], ` +
      `c2s_ports: [1], c2s_direct_tls_ports: [], data_path: "data" };\n`,
  );
  try {
    await fn(config, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("account commands: register, adduser, passwd, deluser and their errors", async () => {
  await withConfig(async (config) => {
    let r = await cadence(["register", "Juliet", "localhost", "pw1", "--config", config]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /created juliet@localhost/);
    r = await cadence(["register", "juliet", "localhost", "pw2", "--config", config]);
    assert.equal(r.code, 1);
    assert.equal(r.err.trim(), "cadence: user juliet@localhost already exists");

    r = await cadence(["adduser", "romeo@localhost", "--config", config], "s3cret\ns3cret\n");
    assert.equal(r.code, 0, r.err);
    r = await cadence(["adduser", "nurse@localhost", "--config", config], "one\ntwo\n");
    assert.equal(r.code, 1);
    assert.match(r.err, /cadence: the passwords do not match/);

    r = await cadence(["passwd", "romeo@localhost", "--config", config], "new\nnew\n");
    assert.equal(r.code, 0, r.err);
    r = await cadence(["passwd", "tybalt@localhost", "--config", config], "x\nx\n");
    assert.equal(r.code, 1);
    assert.match(r.err, /user tybalt@localhost does not exist/);

    r = await cadence(["deluser", "romeo@localhost", "--config", config]);
    assert.equal(r.code, 0, r.err);
    r = await cadence(["deluser", "romeo@localhost", "--config", config]);
    assert.equal(r.code, 1);
    assert.equal(r.err.trim(), "cadence: user romeo@localhost does not exist");

    r = await cadence(["deluser", "not a jid", "--config", config]);
    assert.equal(r.code, 1);
    assert.match(r.err, /is not a valid user JID/);
    r = await cadence(["register", "x", "elsewhere.example", "pw", "--config", config]);
    assert.equal(r.code, 1);
    assert.match(r.err, /host "elsewhere.example" is not a VirtualHost/);
  });
});

Deno.test("usage errors, --help, about, cert generate, check", async () => {
  await withConfig(async (config, dir) => {
    let r = await cadence(["frobnicate"]);
    assert.equal(r.code, 1);
    assert.equal(r.err.trim(), 'cadence: unknown command "frobnicate" (see --help)');
    r = await cadence(["register", "only-one-arg"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /usage: register USER HOST PASSWORD/);
    r = await cadence(["--bogus-flag"]);
    assert.equal(r.code, 1);
    r = await cadence(["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /adduser JID/);
    r = await cadence(["deluser", "--help"]);
    assert.match(r.out, /delete an account/);
    r = await cadence(["about"]);
    assert.match(r.out, /Cadence\s+0\.1\.0/);
    assert.match(r.out, /saxes\s+npm:saxes@/);
    r = await cadence(["start", "--config", `${dir}/missing.ts`]);
    assert.equal(r.code, 1);
    assert.match(r.err, /cadence: config file .*missing.ts not found/);

    r = await cadence(["cert", "generate", "example.org", "--config", config]);
    assert.equal(r.code, 0, r.err);
    assert.ok((await Deno.stat(`${dir}/data/certs/example.org.crt`)).isFile);

    // Port 1 cannot be bound by an unprivileged user; as root it may be free.
    r = await cadence(["check", "--config", config]);
    assert.match(r.out, /ok {4}configuration/);
    assert.match(r.out, /port 1 on 127\.0\.0\.1/);
  });
});

Deno.test("check reports a bad configuration in one line and fails", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/bad.ts`,
      `export default { virtual_hosts: { localhost: {} }, c2s_ports: ["x"] };`,
    );
    const r = await cadence(["check", "--config", `${dir}/bad.ts`]);
    assert.equal(r.code, 1);
    assert.match(
      r.out,
      /FAIL {2}config option "c2s_ports" \(global\): expected an array of port numbers/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The example configuration of the README, as written there. */
async function readmeConfig(): Promise<string> {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const m = /```ts\n(\/\/ cadence\.config\.ts\n[\s\S]*?)```/.exec(readme);
  assert.ok(m, "the README has an example configuration");
  return m[1];
}

Deno.test("configuration files: found without --config, named in the output; the README's example checks out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-find-" });
  try {
    // Only a data path: localhost is served, and check says so.
    await Deno.writeTextFile(
      `${dir}/cadence.config.ts`,
      `export default { data_path: "./data", interfaces: ["127.0.0.1"], c2s_ports: [1], ` +
        `c2s_direct_tls_ports: [] };\n`,
    );
    const run = (args: string[], cwd: string, env: Record<string, string> = {}) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}/main.ts`, ...args],
        cwd,
        env,
        stdout: "piped",
        stderr: "piped",
      }).output().then((r) => ({
        code: r.code,
        out: new TextDecoder().decode(r.stdout),
        err: new TextDecoder().decode(r.stderr),
      }));
    let r = await run(["check"], dir);
    assert.match(
      r.out,
      new RegExp(
        `configuration: ${dir}/cadence.config.ts; it names no virtual_hosts, so localhost is served`,
      ),
    );
    // $CADENCE_CONFIG wins over ./cadence.config.ts.
    await Deno.writeTextFile(
      `${dir}/other.ts`,
      `export default { virtual_hosts: { "example.net": {} }, interfaces: ["127.0.0.1"], ` +
        `c2s_ports: [1], c2s_direct_tls_ports: [] };\n`,
    );
    r = await run(["check"], dir, { CADENCE_CONFIG: `${dir}/other.ts` });
    assert.match(r.out, new RegExp(`configuration: ${dir}/other.ts\\n`));
    assert.match(r.out, /example\.net: no certificate yet/);
    // The README's example, as written (its own ports aside, which may be taken here).
    await Deno.writeTextFile(
      `${dir}/readme.ts`,
      (await readmeConfig()).replace('"./core/config.ts"', `"${ROOT}/core/config.ts"`),
    );
    r = await run(["check", "--config", `${dir}/readme.ts`], dir);
    const failures = r.out.split("\n").filter((l) =>
      l.startsWith("FAIL") && !/^FAIL {2}port /.test(l)
    );
    assert.deepEqual(failures, [], r.out + r.err);
    assert.match(r.out, /ok {4}example\.com: no certificate yet/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cert generate keeps an existing certificate unless --force; warns for other hosts; help is a command", async () => {
  await withConfig(async (config, dir) => {
    let r = await cadence(["cert", "generate", "localhost", "--config", config]);
    assert.equal(r.code, 0, r.err);
    const first = await Deno.readTextFile(`${dir}/data/certs/localhost.crt`);
    r = await cadence(["cert", "generate", "localhost", "--config", config]);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /^cadence: a certificate for localhost exists already \(.*\); add --force to replace it\n$/,
    );
    assert.equal(await Deno.readTextFile(`${dir}/data/certs/localhost.crt`), first);
    r = await cadence(["cert", "generate", "localhost", "--force", "--config", config]);
    assert.equal(r.code, 0, r.err);
    assert.notEqual(await Deno.readTextFile(`${dir}/data/certs/localhost.crt`), first);
    r = await cadence(["cert", "generate", "elsewhere.example", "--config", config]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /warning: elsewhere\.example is not a VirtualHost of this configuration/);
    r = await cadence(["help"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /cert generate HOST \[--force\]/);
    r = await cadence(["help", "passwd"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /^usage: deno run -A main\.ts passwd JID/);
    r = await cadence(["help", "nonsense"]);
    assert.equal(r.code, 1);
  });
});
