import assert from "node:assert/strict";
import {
  deriveScramCredentials,
  fromBase64,
  ScramClient,
  ScramMechanism,
} from "../../../core/sasl/scram.ts";
import type { SaslStep } from "../../../core/sasl/mechanisms.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const text = (s: SaslStep) =>
  s.status === "failure" ? s.condition : new TextDecoder().decode(s.data ?? new Uint8Array());

Deno.test("SCRAM-SHA-1: the RFC 5802 §5 exchange, byte for byte", async () => {
  const creds = await deriveScramCredentials("SHA-1", "pencil", fromBase64("QSXCR+Q6sek8bf92"));
  const server = new ScramMechanism("SHA-1", false, {
    scramCredentials: () => Promise.resolve(creds),
  }, {
    serverNonce: "3rfcNHYJY1ZVvWVs7j",
  });
  const first = await server.step(enc("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"));
  assert.equal(first.status, "challenge");
  assert.equal(
    text(first),
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
  );
  const final = await server.step(enc(
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
  ));
  assert.equal(final.status, "success");
  assert.equal(text(final), "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
});

Deno.test("SCRAM-SHA-256: the RFC 7677 §3 exchange, byte for byte", async () => {
  const creds = await deriveScramCredentials(
    "SHA-256",
    "pencil",
    fromBase64("W22ZaJ0SNY7soEsUEjb6gQ=="),
  );
  const server = new ScramMechanism("SHA-256", false, {
    scramCredentials: () => Promise.resolve(creds),
  }, {
    serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  });
  const first = await server.step(enc("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
  assert.equal(
    text(first),
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  );
  const final = await server.step(enc(
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  ));
  assert.equal(final.status, "success");
  assert.equal(text(final), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
});

async function exchange(
  hash: "SHA-1" | "SHA-256",
  password: string,
  opts: { plus?: boolean; serverBinding?: Uint8Array; clientBinding?: Uint8Array; user?: string } =
    {},
) {
  const creds = await deriveScramCredentials(hash, "right password");
  const server = new ScramMechanism(hash, opts.plus ?? false, {
    scramCredentials: (u) => Promise.resolve(u === "juliet" ? creds : null),
  }, {
    channelBinding: opts.serverBinding
      ? { type: "tls-server-end-point", data: opts.serverBinding }
      : undefined,
  });
  const client = new ScramClient(
    hash,
    opts.user ?? "juliet",
    password,
    { binding: opts.clientBinding },
  );
  const first = await server.step(enc(client.first()));
  if (first.status !== "challenge") return first;
  const final = await server.step(enc(await client.final(text(first))));
  if (final.status === "success") client.verify(text(final));
  return final;
}

Deno.test("SCRAM: right and wrong passwords, unknown users", async () => {
  assert.equal((await exchange("SHA-256", "right password")).status, "success");
  assert.equal((await exchange("SHA-1", "right password")).status, "success");
  assert.equal(text(await exchange("SHA-256", "wrong")), "not-authorized");
  // An unknown user gets a plausible challenge, then fails the same way.
  assert.equal(text(await exchange("SHA-256", "x", { user: "nobody" })), "not-authorized");
});

Deno.test("SCRAM-PLUS: matching binding data succeeds, other data fails", async () => {
  const binding = new Uint8Array([1, 2, 3, 4]);
  assert.equal(
    (await exchange("SHA-256", "right password", {
      plus: true,
      serverBinding: binding,
      clientBinding: binding,
    })).status,
    "success",
  );
  assert.equal(
    text(
      await exchange("SHA-256", "right password", {
        plus: true,
        serverBinding: binding,
        clientBinding: new Uint8Array([9, 9]),
      }),
    ),
    "not-authorized",
  );
});

Deno.test("SCRAM: downgrade (y flag while we offer PLUS) and malformed messages fail", async () => {
  const creds = await deriveScramCredentials("SHA-1", "pw");
  const profile = { scramCredentials: () => Promise.resolve(creds) };
  const cb = { type: "tls-server-end-point" as const, data: new Uint8Array([1]) };
  const step = (msg: string, binding = false) =>
    new ScramMechanism("SHA-1", false, profile, { channelBinding: binding ? cb : undefined })
      .step(enc(msg));
  assert.equal(text(await step("y,,n=juliet,r=abc", true)), "malformed-request");
  assert.equal((await step("y,,n=juliet,r=abc")).status, "challenge");
  assert.equal(text(await step("p=tls-server-end-point,,n=juliet,r=abc")), "malformed-request");
  assert.equal(text(await step("n,,n=juliet")), "malformed-request");
  assert.equal(text(await step("n,,m=ext,n=juliet,r=abc")), "malformed-request");
  assert.equal(text(await step("x,,n=juliet,r=abc")), "malformed-request");
  assert.equal(text(await step("n,,n=bad=name,r=abc")), "malformed-request");
  assert.equal(text(await step("n,a=romeo,n=juliet,r=abc")), "invalid-authzid");
  const m = new ScramMechanism("SHA-1", false, profile);
  await m.step(enc("n,,n=juliet,r=abc"));
  assert.equal(text(await m.step(enc("c=biws,r=wrongnonce,p=AAAA"))), "malformed-request");
});
