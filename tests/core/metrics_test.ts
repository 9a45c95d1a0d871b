/**
 * The metric registry: the exact OpenMetrics text of a counter, a gauge and
 * a histogram with labels; escaping; names made safe; re-registration
 * returning the same family; collectors; separate registries stay apart.
 */
import assert from "node:assert/strict";
import { escape, MetricRegistry, safeName } from "../../core/metrics.ts";

Deno.test("metrics: counter, gauge and histogram render as OpenMetrics text", () => {
  const r = new MetricRegistry();
  const stanzas = r.family("counter", "cadence_stanzas_total", {
    help: "Stanzas routed",
    labels: ["direction", "kind"],
  });
  const msgIn = stanzas.with("in", "message");
  msgIn.add();
  msgIn.add(2);
  stanzas.with("out", "iq").add(1);
  const conns = r.family("gauge", "cadence_connections", { help: "Open", labels: ["type"] });
  conns.with("c2s").set(3);
  conns.with("c2s").add(-1);
  const lat = r.family("histogram", "cadence_storage", {
    unit: "seconds",
    help: "Storage",
    labels: ["op"],
    buckets: [1, 0.5, 0.1], // (sorted on declaration)
  });
  const get = lat.with("get");
  get.sample(0.05);
  get.sample(0.1); // a bound is inclusive
  get.sample(0.7);
  get.sample(30);
  r.family("gauge", "cadence_empty", { help: "Nothing yet", labels: ["x"] });
  assert.equal(
    r.render(),
    [
      "# TYPE cadence_stanzas counter",
      "# HELP cadence_stanzas Stanzas routed",
      'cadence_stanzas_total{direction="in",kind="message"} 3',
      'cadence_stanzas_total{direction="out",kind="iq"} 1',
      "# TYPE cadence_connections gauge",
      "# HELP cadence_connections Open",
      'cadence_connections{type="c2s"} 2',
      "# TYPE cadence_storage_seconds histogram",
      "# UNIT cadence_storage_seconds seconds",
      "# HELP cadence_storage_seconds Storage",
      'cadence_storage_seconds_bucket{op="get",le="0.1"} 2',
      'cadence_storage_seconds_bucket{op="get",le="0.5"} 2',
      'cadence_storage_seconds_bucket{op="get",le="1.0"} 3',
      'cadence_storage_seconds_bucket{op="get",le="+Inf"} 4',
      'cadence_storage_seconds_count{op="get"} 4',
      'cadence_storage_seconds_sum{op="get"} 30.85',
      "# TYPE cadence_empty gauge",
      "# HELP cadence_empty Nothing yet",
      "# EOF",
      "",
    ].join("\n"),
  );
});

Deno.test("metrics: unlabelled metrics, summaries and a histogram without labels", () => {
  const r = new MetricRegistry();
  r.family("gauge", "up").with().set(1);
  const s = r.family("summary", "sizes", { unit: "bytes" }).with();
  s.sample(10);
  s.sample(5);
  r.family("histogram", "h", { buckets: [2] }).with().sample(1);
  assert.equal(
    r.render(),
    "# TYPE up gauge\nup 1\n" +
      "# TYPE sizes_bytes summary\n# UNIT sizes_bytes bytes\nsizes_bytes_count 2\nsizes_bytes_sum 15\n" +
      '# TYPE h histogram\nh_bucket{le="2.0"} 1\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 1\n' +
      "# EOF\n",
  );
});

Deno.test("metrics: label values and help are escaped; names are made safe", () => {
  const r = new MetricRegistry();
  const f = r.family("counter", "mod/with-dash.name", {
    help: 'a "quoted" \\ help\nline',
    labels: ["v"],
  });
  f.with('a"b\\c\nd').add();
  assert.equal(f.name, "mod_with_dash_name");
  assert.equal(
    r.render(),
    "# TYPE mod_with_dash_name counter\n" +
      '# HELP mod_with_dash_name a \\"quoted\\" \\\\ help\\nline\n' +
      'mod_with_dash_name_total{v="a\\"b\\\\c\\nd"} 1\n# EOF\n',
  );
  assert.equal(safeName("9lives"), "_9lives");
  assert.equal(escape("plain"), "plain");
  assert.throws(() => r.family("gauge", "g", { labels: ["bad-label"] }), /invalid label/);
  assert.throws(() => r.family("histogram", "h", { labels: ["le"] }), /invalid label/);
  assert.throws(() => f.with(), /has labels/);
});

Deno.test("metrics: declaring a family again returns it; a different type is an error", () => {
  const r = new MetricRegistry();
  const a = r.family("counter", "c", { labels: ["k"] });
  a.with("x").add(5);
  const b = r.family("counter", "c_total", { labels: ["k"] });
  assert.equal(a, b);
  assert.equal(b.with("x").value, 5);
  assert.equal(a.with("x"), b.with("x")); // one metric per label set, cached
  assert.throws(() => r.family("gauge", "c"), /exists already/);
  assert.throws(() => r.family("counter", "c", { labels: ["other"] }), /exists already/);
  assert.deepEqual(r.names(), ["c"]);
  r.remove("c");
  assert.deepEqual(r.names(), []);
  assert.equal(r.render(), "# EOF\n");
});

Deno.test("metrics: collectors run before rendering; clear and removeWhere drop label sets", () => {
  const r = new MetricRegistry();
  const g = r.family("gauge", "sessions", { labels: ["host"] });
  let n = 0;
  const stop = r.addCollector(() => {
    g.clear();
    g.with("a").set(++n);
  });
  assert.match(r.render(), /sessions\{host="a"\} 1\n/);
  assert.match(r.render(), /sessions\{host="a"\} 2\n/);
  stop();
  g.with("b").set(7);
  g.removeWhere(0, "a");
  assert.equal(r.render(), '# TYPE sessions gauge\nsessions{host="b"} 7\n# EOF\n');
  // Another registry (another server) shares nothing.
  assert.equal(new MetricRegistry().render(), "# EOF\n");
});
