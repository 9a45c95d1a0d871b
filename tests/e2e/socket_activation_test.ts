/**
 * systemd socket activation: the server serves the listening sockets it is
 * passed (LISTEN_FDS from descriptor 3, named by LISTEN_FDNAMES) instead of
 * binding its own ports; a client logs in through them.
 */
import assert from "node:assert/strict";
import { RawClient, streamHeader } from "../helpers/rawclient.ts";
import { freePort } from "../helpers/server.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const ACTIVATE = new URL("./socket_activate.py", import.meta.url).pathname;

/** Starts the server through the launcher; returns it with the ports it printed and its output. */
async function activated(sockets: string, config: string) {
  const child = new Deno.Command("python3", {
    args: [ACTIVATE, sockets, Deno.execPath(), "run", "-A", MAIN, "start", "--config", config],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const output = { out: "", err: "" };
  const decoder = new TextDecoder();
  const reading = Promise.all([
    (async () => {
      for await (const c of child.stdout) output.out += decoder.decode(c, { stream: true });
    })(),
    (async () => {
      for await (const c of child.stderr) output.err += decoder.decode(c, { stream: true });
    })(),
  ]);
  for (let i = 0; !/^[\d ]+\n/.test(output.out); i++) {
    if (i > 100) throw new Error(`no ports from the launcher: ${output.out}${output.err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const ports = output.out.split("\n")[0].split(" ").map(Number);
  const stop = async () => {
    child.kill("SIGTERM");
    const status = await child.status;
    await reading;
    assert.equal(status.code, 0, output.out + output.err);
  };
  return { ports, output, stop };
}

async function writeConfig(dir: string, options: Record<string, unknown>): Promise<string> {
  const config = `${dir}/cadence.config.ts`;
  await Deno.writeTextFile(
    config,
    `export default ${
      JSON.stringify({
        virtual_hosts: { localhost: {} },
        authentication: "internal_plain",
        c2s_require_encryption: false,
        allow_unencrypted_plain_auth: true,
        interfaces: ["127.0.0.1"],
        c2s_direct_tls_ports: [],
        s2s_ports: [await freePort()],
        http_ports: [],
        https_ports: [],
        data_path: dir,
        ...options,
      })
    };\n`,
  );
  const register = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "register", "juliet", "localhost", "pw", "--config", config],
  }).output();
  assert.equal(register.code, 0, new TextDecoder().decode(register.stderr));
  return config;
}

Deno.test("a socket without a known name is served by its port; one whose port is not c2s's is left alone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-activation-" });
  const [plainPort, otherPort] = [await freePort(), await freePort()];
  const config = await writeConfig(dir, { c2s_ports: [plainPort] });
  const server = await activated(`cadence@${plainPort}:@${otherPort}`, config);
  try {
    const c = await RawClient.connect(plainPort);
    assert.equal(await c.login("juliet", "pw"), "juliet@localhost/test");
    c.close();
    const log = () => server.output.out + server.output.err;
    for (let i = 0; i < 50 && !/not serving the socket/.test(log()); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(log(), /not serving the socket systemd passed \(unnamed, fd 4\)/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("inherited sockets (plain and direct TLS, by name) are served; configured ports are not bound", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-activation-" });
  const configured = await freePort();
  const config = await writeConfig(dir, { c2s_ports: [configured] });
  const server = await activated("c2s:c2s_direct_tls", config);
  try {
    const [plain, tls] = server.ports;
    // Connections queue on the inherited socket even before the server is up.
    const c = await RawClient.connect(plain);
    assert.equal(await c.login("juliet", "pw"), "juliet@localhost/test");
    c.close();
    const t = await RawClient.connectTls(tls);
    t.send(streamHeader());
    await t.waitFor(/<mechanism>PLAIN<\/mechanism>/);
    t.close();
    const out = server.output.out;
    assert.match(out, /serving the socket systemd passed \(c2s, fd 3\) on 127\.0\.0\.1:\d+/);
    assert.match(
      out,
      /serving the socket systemd passed \(c2s_direct_tls, fd 4\) .*\(direct TLS\)/,
    );
    // The configured port stays unbound: systemd owns the listening sockets.
    await assert.rejects(() => RawClient.connect(configured), /ECONNREFUSED/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
