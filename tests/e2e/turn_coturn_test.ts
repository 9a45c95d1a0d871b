/**
 * TURN credentials from Cadence work on a real TURN server: Debian's coturn
 * runs with `use-auth-secret` on loopback; a client asks Cadence for its
 * services (XEP-0215, turn_external), and coturn's own test client
 * (`turnutils_uclient`) allocates relays with those credentials and sends
 * through them. A password changed by one character is refused.
 */
import assert from "node:assert/strict";
import { freePort, startTestServer } from "../helpers/server.ts";
import { connectXmpp, xml } from "../helpers/xmppclient.ts";

const NS = "urn:xmpp:extdisco:2";

async function has(cmd: string): Promise<boolean> {
  try {
    const r = await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`] }).output();
    return r.success;
  } catch {
    return false;
  }
}

/** Runs turnutils_uclient against the TURN server; its output. */
async function uclient(port: number, username: string, password: string): Promise<string> {
  const peerPort = await freePort();
  const r = await new Deno.Command("turnutils_uclient", {
    // 2 clients, 1 message each, talking to each other through their relays.
    args: [
      "-n",
      "2",
      "-m",
      "1",
      "-l",
      "64",
      "-y",
      "-u",
      username,
      "-w",
      password,
      "-p",
      String(
        port,
      ),
      "-e",
      "127.0.0.1",
      "-r",
      String(peerPort),
      "127.0.0.1",
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  return new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
}

Deno.test("turn: credentials from turn_external allocate relays on coturn; a wrong one does not", async () => {
  if (!await has("turnserver") || !await has("turnutils_uclient")) {
    throw new Error("coturn is not installed (.ci/run installs it: apt-get install coturn)");
  }
  const turnPort = await freePort();
  const relayBase = 40000 + Math.floor(Math.random() * 200) * 100;
  const dir = await Deno.makeTempDir({ prefix: "cadence-coturn-" });
  const turn = new Deno.Command("turnserver", {
    args: [
      "--use-auth-secret",
      "--static-auth-secret=turn-secret",
      "--realm=localhost",
      "--listening-ip=127.0.0.1",
      `--listening-port=${turnPort}`,
      "--relay-ip=127.0.0.1",
      `--min-port=${relayBase}`,
      `--max-port=${relayBase + 99}`,
      "--no-tls",
      "--no-dtls",
      "--no-cli",
      "--allow-loopback-peers",
      `--pidfile=${dir}/turnserver.pid`,
      `--userdb=${dir}/turndb`,
      "--log-file=stdout",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const t = await startTestServer({
    authentication: "internal_plain",
    c2s_require_encryption: false,
    allow_unencrypted_plain_auth: true,
    modules_enabled: ["roster", "saslauth", "tls", "disco", "turn_external"],
    turn_external_host: "127.0.0.1",
    turn_external_port: turnPort,
    turn_external_secret: "turn-secret",
  } as never);
  try {
    await t.server.users("localhost")!.createUser("juliet", "pw");
    const c = await connectXmpp(t.port, "juliet", "pw");
    await c.send(
      xml("iq", { type: "get", id: "s1", to: "localhost" }, xml("services", { xmlns: NS })),
    );
    const r = await c.waitFor((s) => s.is("iq") && s.attrs.id === "s1");
    await c.stop();
    const service = r.getChild("services", NS).getChildren("service").find((
      s: { attrs: Record<string, string> },
    ) => s.attrs.type === "turn");
    assert.equal(service.attrs.port, String(turnPort));
    const { username, password } = service.attrs;

    let out = "";
    for (let i = 0; i < 20; i++) { // (coturn may still be starting)
      out = await uclient(turnPort, username, password);
      if (/Total lost packets/.test(out)) break;
      await new Promise((ok) => setTimeout(ok, 250));
    }
    assert.match(out, /tot_recv_msgs=[1-9]/, out.slice(-2000));
    assert.match(out, /Total lost packets 0 /);

    const wrong = password.slice(0, -2) + (password.at(-2) === "A" ? "B" : "A") + "=";
    const refused = await uclient(turnPort, username, wrong);
    assert.match(refused, /Cannot complete Allocation/);
    assert.doesNotMatch(refused, /Total lost packets/);
  } finally {
    await t.stop();
    turn.kill("SIGTERM");
    await turn.status;
    await Deno.remove(dir, { recursive: true });
  }
});
