/** Connection helpers: how clients are counted by address. */
import assert from "node:assert/strict";
import { addressGroup } from "../../../core/net/connection.ts";

Deno.test("per-address limits count IPv6 clients by their /64", () => {
  assert.equal(addressGroup("192.0.2.7"), "192.0.2.7");
  assert.equal(addressGroup("2001:db8::1"), "2001:db8:0:0::/64");
  assert.equal(addressGroup("2001:db8:0:0:ffff::2"), "2001:db8:0:0::/64");
  assert.equal(addressGroup("2001:0DB8:0000:0001:1:2:3:4"), "2001:db8:0:1::/64");
  assert.equal(addressGroup("::1"), "0:0:0:0::/64");
  assert.equal(addressGroup("fe80::1:2:3:4"), "fe80:0:0:0::/64");
});
