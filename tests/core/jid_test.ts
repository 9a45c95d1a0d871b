import assert from "node:assert/strict";
import {
  bare,
  hostOf,
  join,
  prep,
  prepDomain,
  prepNode,
  prepResource,
  split,
} from "../../core/jid.ts";

Deno.test("split", () => {
  assert.deepEqual(split("a@b/c"), { node: "a", host: "b", resource: "c" });
  assert.deepEqual(split("b/c@d"), { node: undefined, host: "b", resource: "c@d" });
  assert.deepEqual(split("b"), { node: undefined, host: "b", resource: undefined });
  for (const bad of ["", "@b", "a@", "a@b/", "/r", "a@b@c"]) {
    assert.equal(split(bad), undefined, bad);
  }
});

Deno.test("prep normalises case and width, keeps the resource", () => {
  assert.equal(prep("Juliet@Example.COM/Balcony"), "juliet@example.com/Balcony");
  assert.equal(prep("\uff2a\uff35\uff2c\uff29\uff25\uff34@example.com"), "juliet@example.com"); // fullwidth
  assert.equal(prep("example.com."), "example.com");
  assert.equal(prep("a@[::1]/r"), "a@[::1]/r");
  assert.equal(prepResource("caf\u0065\u0301"), "caf\u00e9"); // NFC
});

Deno.test("prep refuses invalid JIDs", () => {
  for (
    const bad of [
      "jul iet@example.com",
      'ju"liet@example.com',
      "a:b@example.com",
      "a@exa mple.com",
      "a@example..com",
      `a@${"x".repeat(64)}.com`,
      `${"n".repeat(1024)}@example.com`,
      "a@example.com/\u0007",
      "a@@example.com",
    ]
  ) assert.equal(prep(bad), undefined, bad);
  assert.equal(prepNode(""), undefined);
  assert.equal(prepDomain(""), undefined);
});

Deno.test("bare, hostOf, join", () => {
  assert.equal(bare("a@b/c/d"), "a@b");
  assert.equal(hostOf("a@b/c"), "b");
  assert.equal(hostOf("b/c"), "b");
  assert.equal(join("a", "b", "c"), "a@b/c");
  assert.equal(join(undefined, "b"), "b");
});
