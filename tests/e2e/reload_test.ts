/**
 * SIGHUP reloads the configuration without dropping sessions: hosts come and
 * go, modules follow the new list, options and certificates are read again,
 * the log file is reopened, and a broken file leaves the server as it was.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { RawClient, streamHeader } from "../helpers/rawclient.ts";
import { freePort } from "../helpers/server.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function cli(args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", MAIN, ...args] })
    .output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
}

async function until(what: string, test: () => boolean | Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!await test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const readOr = (path: string) => Deno.readTextFile(path).catch(() => "");

Deno.test("SIGHUP: hosts, modules, options, certificates and the log file change; sessions stay", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-reload-" });
  const [port, newPort, s2sPort] = [await freePort(), await freePort(), await freePort()];
  const config = `${dir}/cadence.config.ts`;
  const log = `${dir}/cadence.log`;
  const write = (options: Record<string, unknown>) =>
    Deno.writeTextFile(
      config,
      `export default ${
        JSON.stringify({
          authentication: "internal_plain",
          c2s_require_encryption: false,
          allow_unencrypted_plain_auth: true,
          interfaces: ["127.0.0.1"],
          c2s_direct_tls_ports: [],
          s2s_ports: [s2sPort],
          http_ports: [],
          https_ports: [],
          data_path: dir,
          log: { level: "info", file: log },
          ...options,
        })
      };\n`,
    );
  await write({
    virtual_hosts: { localhost: {}, "gone.example": {} },
    c2s_ports: [port],
    server_name: "Before",
  });
  await cli(["register", "juliet", "localhost", "pw", "--config", config]);
  await cli(["register", "mercutio", "gone.example", "pw", "--config", config]);
  await cli(["cert", "generate", "localhost", "--config", config]);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "start", "--config", config],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const clients: RawClient[] = [];
  try {
    await until("the server listens", async () => {
      const c = await RawClient.connect(port).catch(() => undefined);
      c?.close();
      return c !== undefined;
    });
    const juliet = await RawClient.connect(port);
    clients.push(juliet);
    await juliet.login("juliet", "pw");
    const mercutio = await RawClient.connect(port);
    clients.push(mercutio);
    mercutio.send(streamHeader("gone.example"));
    await mercutio.waitFor(/<\/stream:features>/);

    // The new configuration: a host gone, one new, another port, a module off,
    // an option changed, a new certificate, and the log file moved away (logrotate).
    await write({
      virtual_hosts: { localhost: {}, "new.example": {} },
      c2s_ports: [port, newPort],
      server_name: "After",
      modules_disabled: ["version"],
    });
    await cli(["cert", "generate", "localhost", "--force", "--config", config]);
    const fingerprint = new X509Certificate(await Deno.readTextFile(`${dir}/certs/localhost.crt`))
      .fingerprint256;
    await Deno.rename(log, `${log}.1`);
    child.kill("SIGHUP");
    await until(
      "the reload is logged in a new log file",
      async () => /configuration reloaded/.test(await readOr(log)),
    );

    // The session is still there and answers.
    juliet.clear();
    juliet.send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await juliet.waitFor(/<iq [^>]*id="p"[^>]*type="result"/);
    // Options and modules: the new server name, no version module.
    juliet.send(
      "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    await juliet.waitFor(/<identity category="server" type="im" name="After"\/>/);
    juliet.send("<iq type='get' id='v' to='localhost'><query xmlns='jabber:iq:version'/></iq>");
    await juliet.waitFor(/<iq [^>]*id="v"[^>]*type="error"[\s\S]*<service-unavailable /);
    assert.doesNotMatch(juliet.received, /<stream:error/);
    // The host that went away ended its streams; the new one serves.
    await mercutio.waitFor(/<stream:error><host-gone /);
    const fresh = await RawClient.connect(newPort); // the new port
    clients.push(fresh);
    fresh.send(streamHeader("new.example"));
    await fresh.waitFor(/<\/stream:features>/);
    // New TLS connections get the new certificate.
    const tls = await RawClient.connect(port);
    clients.push(tls);
    tls.send(streamHeader());
    await tls.waitFor(/<starttls /);
    tls.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await tls.waitFor(/<proceed /);
    await tls.startTls();
    const cert = (tls.socket as TLSSocket).getPeerCertificate();
    assert.equal(cert.fingerprint256, fingerprint);

    // A broken file: logged, and the server goes on with what it had.
    await Deno.writeTextFile(config, "export default { virtual_hosts: ");
    child.kill("SIGHUP");
    await until(
      "the refusal is logged",
      async () =>
        /configuration not reloaded, the server goes on as it was/.test(await readOr(log)),
    );
    juliet.clear();
    juliet.send("<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await juliet.waitFor(/id="p2"/);
  } finally {
    for (const c of clients) c.close();
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
