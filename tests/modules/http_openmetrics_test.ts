/**
 * mod_http_openmetrics: `/metrics` after two logins, a message and a failed
 * login shows the counters moved by exactly that (sessions, stanzas,
 * authentications, connections), in text that parses as OpenMetrics; only
 * allowed addresses (`openmetrics_allow_ips`, `openmetrics_allow_cidr`,
 * through trusted proxies) may read it; a drop-in module's own metrics
 * (`module.metric`, `module.measure`, a gauge set on `stats-update`) show
 * with their `host` label and go when it unloads.
 */
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { connectXmpp, xml } from "../helpers/xmppclient.ts";

const OPTIONS = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  modules_enabled: ["roster", "saslauth", "tls", "disco", "message", "http_openmetrics"],
};

async function scrape(t: TestServer, forwardedFor?: string) {
  const res = await fetch(`http://127.0.0.1:${t.httpPort}/metrics`, {
    headers: forwardedFor ? { "x-forwarded-for": forwardedFor } : {},
  });
  return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
}

/** Samples by their full text before the value ("name{labels}"). */
function parse(text: string): Map<string, number> {
  assert.ok(text.endsWith("# EOF\n"), "ends with # EOF");
  const typed = new Set<string>();
  const samples = new Map<string, number>();
  for (const line of text.slice(0, -"# EOF\n".length).split("\n").slice(0, -1)) {
    const meta = /^# (TYPE|UNIT|HELP) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === "TYPE") {
        assert.match(meta[3], /^(counter|gauge|histogram|summary)$/);
        typed.add(meta[2]);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const family = m[1].replace(/_(total|bucket|count|sum)$/, "");
    assert.ok(typed.has(family) || typed.has(m[1]), `no # TYPE before ${line}`);
    samples.set(m[1] + (m[2] ?? ""), Number(m[3]));
  }
  return samples;
}

Deno.test("http_openmetrics: logins, a message and a failed login move the counters", async () => {
  const t = await startTestServer(OPTIONS);
  try {
    for (const u of ["juliet", "romeo"]) await t.server.users("localhost")!.createUser(u, "pw");
    const juliet = await connectXmpp(t.port, "juliet", "pw", "balcony");
    const romeo = await connectXmpp(t.port, "romeo", "pw", "garden");
    try {
      await assert.rejects(connectXmpp(t.port, "romeo", "wrong", "x"));
      const before = await scrape(t);
      assert.equal(before.status, 200);
      assert.equal(before.type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
      const b = parse(before.text);

      await juliet.send(xml("message", { to: romeo.jid, type: "chat" }, [xml("body", {}, "hi")]));
      await romeo.waitFor((s) => s.is("message"));
      const a = parse((await scrape(t)).text);
      const delta = (k: string) => (a.get(k) ?? 0) - (b.get(k) ?? 0);
      assert.equal(delta('cadence_stanzas_total{direction="in",kind="message"}'), 1);
      assert.equal(delta('cadence_stanzas_total{direction="out",kind="message"}'), 1);
      assert.equal(a.get('cadence_sessions{host="localhost"}'), 2);
      // (the failed login's connection may not have closed yet)
      assert.ok(a.get('cadence_connections{type="c2s"}')! >= 2);
      assert.equal(a.get('cadence_connections{type="websocket"}'), 0);
      assert.equal(
        a.get('cadence_mod_saslauth_authentications_total{host="localhost",result="success"}'),
        2,
      );
      assert.equal(
        a.get('cadence_mod_saslauth_authentications_total{host="localhost",result="failure"}'),
        1,
      );
      assert.ok(a.get("process_resident_memory_bytes")! > 0);
      assert.ok(a.get("cadence_memory_heap_used_bytes")! > 0);
      assert.equal(a.get("process_start_time_seconds"), t.server.startTime / 1000);
      assert.ok(a.get("cadence_uptime_seconds")! >= 0);
      assert.ok(a.has("cadence_event_loop_lag_seconds"));
      // Storage was used (accounts, roster): its operations were timed.
      assert.ok(
        [...a.keys()].some((k) =>
          k.startsWith('cadence_storage_operation_duration_seconds_count{driver="sqlite"')
        ),
      );
    } finally {
      await juliet.stop();
      await romeo.stop();
    }
    // Through the (trusted) local proxy, from another address: refused.
    const refused = await scrape(t, "10.1.2.3");
    assert.equal(refused.status, 403);
    assert.doesNotMatch(refused.text, /cadence_/);
  } finally {
    await t.stop();
  }
});

const COUNTING_MODULE = `
export default (module) => {
  const pings = module.metric("counter", "pings", { help: "Pings", labels: ["kind"] });
  pings.with("x").add(2);
  module.measure("hits", "rate")(3);
  const level = module.metric("gauge", "level", { help: "Set at collection" }).with();
  module.hookGlobal("stats-update", () => level.set(42));
};
`;

Deno.test("http_openmetrics: allowed addresses and networks; a drop-in module's metrics", async () => {
  const plugins = await Deno.makeTempDir({ prefix: "cadence-plugins-" });
  await Deno.writeTextFile(`${plugins}/counting.ts`, COUNTING_MODULE);
  const t = await startTestServer({
    ...OPTIONS,
    plugin_paths: [plugins],
    modules_enabled: [...OPTIONS.modules_enabled, "counting"],
    openmetrics_allow_ips: ["10.9.9.9"],
    openmetrics_allow_cidr: "10.1.0.0/16",
  });
  try {
    assert.equal((await scrape(t)).status, 403); // 127.0.0.1 is not allowed here
    assert.equal((await scrape(t, "10.2.0.1")).status, 403);
    assert.equal((await scrape(t, "10.9.9.9")).status, 200);
    const ok = await scrape(t, "10.1.200.7");
    assert.equal(ok.status, 200);
    const m = parse(ok.text);
    assert.equal(m.get('cadence_mod_counting_pings_total{host="localhost",kind="x"}'), 2);
    assert.equal(m.get('cadence_mod_counting_hits_total{host="localhost"}'), 3);
    assert.equal(m.get('cadence_mod_counting_level{host="localhost"}'), 42);
    assert.match(ok.text, /# HELP cadence_mod_counting_pings Pings\n/);

    await t.server.modules.unload("localhost", "counting");
    const after = await scrape(t, "10.9.9.9");
    assert.doesNotMatch(after.text, /cadence_mod_counting/);
  } finally {
    await t.stop();
    await Deno.remove(plugins, { recursive: true });
  }
});
