/**
 * The s2s certificate checks on certificates made by openssl: which names
 * a certificate carries, which domains they cover (RFC 6125 wildcards,
 * XmppAddr, SRV-ID, the common name only without subjectAltNames), and
 * whether a chain leads to a trusted root.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  certIdentities,
  certMatchesDomain,
  trustAnchors,
  verifyChain,
} from "../../modules/s2s/certs.ts";
import { pemToDer } from "../../core/net/der.ts";
import { issueCert, makeCa } from "../helpers/certs.ts";

const der = async (path: string) => pemToDer(await Deno.readTextFile(path));

Deno.test("s2s certs: names read from the certificate, and the domains they cover", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-certs-" });
  try {
    const ca = await makeCa(dir, "root");
    const all = await issueCert(dir, ca, "all", {
      cn: "cn.test",
      dns: ["a.test", "*.wild.test"],
      xmppAddr: ["x.test"],
      srv: ["_xmpp-server.s.test"],
    });
    const ids = certIdentities(await der(all.leaf));
    assert.deepEqual(ids, {
      dnsIds: ["a.test", "*.wild.test"],
      srvIds: ["_xmpp-server.s.test"],
      xmppAddrs: ["x.test"],
      commonNames: ["cn.test"],
    });
    const covers = (d: string) => certMatchesDomain(ids, d);
    assert.ok(covers("a.test"));
    assert.ok(covers("A.Test"));
    assert.ok(covers("x.test"));
    assert.ok(covers("s.test"));
    assert.ok(covers("chat.wild.test"));
    // One label for the wildcard, never none or two; the common name is ignored beside SANs.
    assert.ok(!covers("wild.test"));
    assert.ok(!covers("a.b.wild.test"));
    assert.ok(!covers("cn.test"));
    assert.ok(!covers("b.test"));

    // Only a common name: it counts (a certificate from before subjectAltNames).
    const cnOnly = certIdentities(
      await der((await issueCert(dir, ca, "old", { cn: "o.test" })).leaf),
    );
    assert.deepEqual(cnOnly.dnsIds, []);
    assert.ok(certMatchesDomain(cnOnly, "o.test"));
    assert.ok(!certMatchesDomain(cnOnly, "p.test"));

    // Wildcards only as the whole leftmost label, over a domain of two labels or more.
    const odd = certIdentities(
      await der((await issueCert(dir, ca, "odd", { dns: ["f*.odd.test", "*.test"] })).leaf),
    );
    assert.ok(!certMatchesDomain(odd, "foo.odd.test"));
    assert.ok(!certMatchesDomain(odd, "odd.test"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("s2s certs: a chain is trusted through its intermediates to a root, and not otherwise", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-certs-" });
  try {
    const root = await makeCa(dir, "root");
    const inter = await issueCert(dir, root, "inter", { ca: true });
    const leaf = await issueCert(dir, inter, "leaf", { dns: ["a.test"] });
    const other = await makeCa(dir, "other");
    const anchors = trustAnchors(root.cert);
    const chain = [await der(leaf.leaf), await der(inter.leaf)];
    assert.deepEqual(verifyChain(chain, anchors), { ok: true });
    // Without the intermediate, or against another root: not trusted.
    assert.deepEqual(verifyChain(chain.slice(0, 1), anchors), {
      ok: false,
      reason: "issuer not trusted",
    });
    assert.equal(verifyChain(chain, trustAnchors(other.cert)).ok, false);
    // Self-signed.
    const self = await der(other.cert);
    assert.deepEqual(verifyChain([self], anchors), {
      ok: false,
      reason: "self-signed certificate",
    });
    // Expired (checked as of a date past its end).
    const later = Date.parse(new X509Certificate(await Deno.readTextFile(leaf.leaf)).validTo) +
      1000;
    assert.deepEqual(verifyChain(chain, anchors, later), {
      ok: false,
      reason: "certificate expired or not yet valid",
    });
    // A leaf that is no CA cannot vouch for another certificate.
    const fake = await issueCert(dir, leaf, "fake", { dns: ["b.test"] });
    assert.equal(
      verifyChain([await der(fake.leaf), await der(leaf.leaf), await der(inter.leaf)], anchors)
        .ok,
      false,
    );
    // The system's roots load, and an empty CA file is refused with its name.
    assert.ok(trustAnchors().length > 10);
    await Deno.writeTextFile(`${dir}/empty.pem`, "");
    assert.throws(() => trustAnchors(`${dir}/empty.pem`), /empty\.pem: no certificate/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
