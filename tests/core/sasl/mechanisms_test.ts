import assert from "node:assert/strict";
import { availableMechanisms, createMechanism } from "../../../core/sasl/mechanisms.ts";
import { saslprep } from "../../../core/sasl/saslprep.ts";
import {
  pemToDer,
  signatureAlgorithm,
  tlsServerEndPoint,
} from "../../../core/sasl/channel_binding.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const profile = {
  testPassword: (u: string, p: string) => Promise.resolve(u === "juliet" && p === "pw"),
  scramCredentials: () => Promise.resolve(null),
};

Deno.test("mechanisms on offer depend on TLS, channel binding and the provider", () => {
  const cb = { type: "tls-server-end-point" as const, data: new Uint8Array(32) };
  assert.deepEqual(
    availableMechanisms(profile, {
      secure: true,
      allowUnencryptedPlain: false,
      channelBinding: cb,
    }),
    ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"],
  );
  assert.deepEqual(
    availableMechanisms(profile, { secure: false, allowUnencryptedPlain: false }),
    ["SCRAM-SHA-256", "SCRAM-SHA-1"],
  );
  assert.deepEqual(
    availableMechanisms({ testPassword: profile.testPassword }, {
      secure: false,
      allowUnencryptedPlain: true,
    }),
    ["PLAIN"],
  );
  assert.equal(createMechanism("SCRAM-SHA-1-PLUS", profile, {}), undefined);
  assert.equal(createMechanism("DIGEST-MD5", profile, {}), undefined);
});

Deno.test("PLAIN: success, wrong password, authzid, malformed", async () => {
  const step = (s: string) => createMechanism("PLAIN", profile, {})!.step(enc(s));
  assert.deepEqual(await step("\0juliet\0pw"), { status: "success", username: "juliet" });
  assert.equal((await step("juliet@localhost\0juliet\0pw")).status, "success");
  assert.equal((await step("\0juliet\0nope") as { condition: string }).condition, "not-authorized");
  assert.equal(
    (await step("romeo@x\0juliet\0pw") as { condition: string }).condition,
    "invalid-authzid",
  );
  assert.equal((await step("juliet\0pw") as { condition: string }).condition, "malformed-request");
  assert.equal(
    (await createMechanism("PLAIN", profile, {})!.step(new Uint8Array())).status,
    "challenge",
  );
});

Deno.test("SASLprep maps spaces, removes soft hyphens, refuses controls", () => {
  assert.equal(saslprep("I\u00ADX"), "IX");
  assert.equal(saslprep("a\u00A0b"), "a b");
  assert.equal(saslprep("\u2168"), "IX");
  assert.equal(saslprep("a\u0007b"), undefined);
  assert.equal(saslprep("plain ascii"), "plain ascii");
});

Deno.test("tls-server-end-point hashes the certificate with its signature hash", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const [digest, hash, len] of [["sha256", "SHA-256", 32], ["sha384", "SHA-384", 48]] as const
    ) {
      const r = await new Deno.Command("openssl", {
        args: [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:P-256",
          "-nodes",
          `-${digest}`,
          "-keyout",
          `${dir}/k.pem`,
          "-out",
          `${dir}/c.pem`,
          "-subj",
          "/CN=t",
          "-days",
          "1",
        ],
        stderr: "null",
      }).output();
      assert.ok(r.success, "openssl made a certificate");
      const der = pemToDer(await Deno.readTextFile(`${dir}/c.pem`));
      assert.ok(signatureAlgorithm(der).startsWith("1.2.840.10045.4.3."));
      const expected = new Uint8Array(
        await crypto.subtle.digest(hash, der as Uint8Array<ArrayBuffer>),
      );
      const got = await tlsServerEndPoint(der);
      assert.equal(got.length, len);
      assert.deepEqual(got, expected);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
