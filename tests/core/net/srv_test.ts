import assert from "node:assert/strict";
import { orderSrv, resolveServer } from "../../../core/net/srv.ts";
import { startDnsServer } from "../../helpers/dns_server.ts";

Deno.test("srv: SRV targets in priority order, direct TLS first on a tie, each target's addresses", async () => {
  const dns = await startDnsServer({
    "_xmpps-server._tcp.a.test": [{ srv: [10, 0, 5270, "tls.a.test"] }],
    "_xmpp-server._tcp.a.test": [
      { srv: [20, 0, 5269, "backup.a.test"] },
      { srv: [10, 0, 5269, "main.a.test"] },
    ],
    "tls.a.test": [{ a: "127.0.0.2" }],
    "main.a.test": [{ a: "127.0.0.3" }, { aaaa: "::1" }],
    "backup.a.test": [{ a: "127.0.0.4" }],
  });
  try {
    const targets = await resolveServer("a.test", { nameServer: dns.nameServer });
    assert.deepEqual(
      targets.map((t) => `${t.host} ${t.address}:${t.port}${t.directTls ? " tls" : ""}`),
      [
        "tls.a.test 127.0.0.2:5270 tls",
        "main.a.test ::1:5269",
        "main.a.test 127.0.0.3:5269",
        "backup.a.test 127.0.0.4:5269",
      ],
    );
  } finally {
    dns.close();
  }
});

Deno.test("srv: no SRV records: the domain's own addresses on 5269; '.': no service; unknown: nothing", async () => {
  const dns = await startDnsServer({
    "plain.test": [{ a: "127.0.0.5" }],
    "_xmpp-server._tcp.none.test": [{ srv: [0, 0, 0, "."] }],
    "none.test": [{ a: "127.0.0.6" }],
  });
  try {
    const plain = await resolveServer("plain.test", { nameServer: dns.nameServer });
    assert.deepEqual(plain, [{
      host: "plain.test",
      address: "127.0.0.5",
      port: 5269,
      directTls: false,
    }]);
    assert.ok(dns.asked.includes("_xmpps-server._tcp.plain.test SRV"));
    assert.deepEqual(await resolveServer("none.test", { nameServer: dns.nameServer }), []);
    assert.deepEqual(await resolveServer("nowhere.test", { nameServer: dns.nameServer }), []);
  } finally {
    dns.close();
  }
});

Deno.test("srv: within a priority, weights decide at random (RFC 2782); zero weights keep their order", () => {
  const rec = (target: string, weight: number) => ({
    priority: 0,
    weight,
    port: 1,
    target,
    directTls: false,
  });
  // A draw in the first 10% of the total picks the weight-10 record first, else the weight-90 one.
  assert.deepEqual(orderSrv([rec("a", 10), rec("b", 90)], () => 0.05).map((r) => r.target), [
    "a",
    "b",
  ]);
  assert.deepEqual(orderSrv([rec("a", 10), rec("b", 90)], () => 0.5).map((r) => r.target), [
    "b",
    "a",
  ]);
  assert.deepEqual(orderSrv([rec("a", 0), rec("b", 0)], () => 0.99).map((r) => r.target), [
    "a",
    "b",
  ]);
});
