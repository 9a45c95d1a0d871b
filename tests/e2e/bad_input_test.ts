/**
 * Bad input on a real socket: each gets the RFC 6120 stream or stanza error
 * it should, and the server stays up for the next client.
 */
import assert from "node:assert/strict";
import { RawClient, streamHeader } from "../helpers/rawclient.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const PLAIN_OK = {
  authentication: "internal_plain",
  c2s_require_encryption: false,
  allow_unencrypted_plain_auth: true,
  c2s_stanza_size_limit: 20_000,
};

async function withServer(fn: (t: TestServer) => Promise<void>, options = PLAIN_OK) {
  const t = await startTestServer(options);
  try {
    await t.server.users("localhost")!.createUser("juliet", "secret");
    await fn(t);
  } finally {
    await t.stop();
  }
}

async function expectStreamError(t: TestServer, input: string[], condition: string) {
  const c = await RawClient.connect(t.port);
  try {
    for (const chunk of input) c.send(chunk);
    await c.waitFor(new RegExp(`<stream:error><${condition} `));
    await c.waitFor(/<\/stream:stream>/);
    await c.waitClosed();
  } finally {
    c.close();
  }
}

Deno.test("malformed XML gets not-well-formed", async () => {
  await withServer(async (t) => {
    await expectStreamError(
      t,
      [streamHeader(), "<message><body>hi</bdy></message>"],
      "not-well-formed",
    );
  });
});

Deno.test("DTD, comment, processing instruction and entity get restricted-xml", async () => {
  await withServer(async (t) => {
    await expectStreamError(t, [
      "<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY x 'y'>]>",
    ], "restricted-xml");
    await expectStreamError(t, [streamHeader(), "<!-- a comment -->"], "restricted-xml");
    await expectStreamError(t, [streamHeader(), "<?php echo 1; ?>"], "restricted-xml");
    await expectStreamError(
      t,
      [streamHeader(), "<message><body>&bogus;</body></message>"],
      "restricted-xml",
    );
  });
});

Deno.test("an oversized stanza gets policy-violation", async () => {
  await withServer(async (t) => {
    const big = "<message><body>" + "x".repeat(30_000) + "</body></message>";
    await expectStreamError(t, [streamHeader(), big], "policy-violation");
  });
});

Deno.test("too deep nesting gets policy-violation", async () => {
  await withServer(async (t) => {
    const deep = "<a>".repeat(500);
    await expectStreamError(t, [streamHeader(), `<message>${deep}`], "policy-violation");
  });
});

Deno.test("invalid UTF-8 gets unsupported-encoding", async () => {
  await withServer(async (t) => {
    const c = await RawClient.connect(t.port);
    try {
      c.send(streamHeader());
      await c.waitFor(/<\/stream:features>/);
      c.send(new Uint8Array([0x3c, 0x61, 0xff, 0xfe, 0x3e]));
      await c.waitFor(/<stream:error><unsupported-encoding /);
      await c.waitClosed();
    } finally {
      c.close();
    }
  });
});

Deno.test("wrong stream namespace gets invalid-namespace; unknown host gets host-unknown", async () => {
  await withServer(async (t) => {
    await expectStreamError(t, [
      "<stream:stream to='localhost' version='1.0' xmlns='jabber:client' " +
      "xmlns:stream='http://example.com/streams'>",
    ], "invalid-namespace");
    await expectStreamError(t, [
      "<stream:stream to='localhost' version='1.0' xmlns='jabber:server' " +
      "xmlns:stream='http://etherx.jabber.org/streams'>",
    ], "invalid-namespace");
    await expectStreamError(t, [streamHeader("nowhere.example")], "host-unknown");
  });
});

Deno.test("wrong password gets not-authorized and no session", async () => {
  await withServer(async (t) => {
    const c = await RawClient.connect(t.port);
    try {
      c.send(streamHeader());
      await c.waitFor(/<\/stream:features>/);
      c.send(
        `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
          btoa("\0juliet\0wrong")
        }</auth>`,
      );
      await c.waitFor(/<failure xmlns=["']urn:ietf:params:xml:ns:xmpp-sasl["']><not-authorized\/>/);
      assert.equal(t.server.sessions.full.size, 0);
      // Still unauthenticated: a stanza now closes the stream with not-authorized.
      c.send("<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>");
      await c.waitFor(/<stream:error><not-authorized /);
      await c.waitClosed();
    } finally {
      c.close();
    }
  });
});

Deno.test("repeated failed authentication closes the stream", async () => {
  await withServer(async (t) => {
    const c = await RawClient.connect(t.port);
    try {
      c.send(streamHeader());
      await c.waitFor(/<\/stream:features>/);
      const bad = `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
        btoa("\0juliet\0wrong")
      }</auth>`;
      for (let i = 0; i < 3; i++) c.send(bad);
      await c.waitFor(/<stream:error><policy-violation /); // RFC 6120 §6.4.5
      await c.waitClosed();
    } finally {
      c.close();
    }
  });
});

Deno.test("a stanza before authentication gets not-authorized", async () => {
  await withServer(async (t) => {
    await expectStreamError(t, [
      streamHeader(),
      "<message to='juliet@localhost'><body>hi</body></message>",
    ], "not-authorized");
  });
});

Deno.test("PLAIN is refused on an unencrypted stream by default", async () => {
  await withServer(async (t) => {
    const c = await RawClient.connect(t.port);
    try {
      c.send(streamHeader());
      const features = (await c.waitFor(/<stream:features>.*<\/stream:features>/s))[0];
      assert.match(
        features,
        /<starttls xmlns=["']urn:ietf:params:xml:ns:xmpp-tls["']><required\/>/,
      );
      assert.doesNotMatch(features, /<mechanisms/);
      c.send(
        `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${
          btoa("\0juliet\0secret")
        }</auth>`,
      );
      await c.waitFor(
        /<failure xmlns=["']urn:ietf:params:xml:ns:xmpp-sasl["']><encryption-required\/>/,
      );
    } finally {
      c.close();
    }
  }, { ...PLAIN_OK, c2s_require_encryption: true, allow_unencrypted_plain_auth: false });
});

Deno.test("unknown iq gets service-unavailable; a forged from is rewritten", async () => {
  await withServer(async (t) => {
    const c = await RawClient.connect(t.port);
    try {
      const jid = await c.login("juliet", "secret", "balcony");
      assert.equal(jid, "juliet@localhost/balcony");
      c.send("<iq type='get' id='u1' to='localhost'><query xmlns='urn:example:nothing'/></iq>");
      const m = await c.waitFor(/<iq [^>]*id="u1"[^>]*>.*?<\/iq>/s);
      assert.match(m[0], /type="error"/);
      assert.match(m[0], /<service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
      c.clear();
      // A result or an error is never answered with an error.
      c.send("<iq type='result' id='u2' to='localhost'/>");
      c.send(
        "<iq type='get' id='p1' to='localhost' from='romeo@localhost/evil'>" +
          "<ping xmlns='urn:xmpp:ping'/></iq>",
      );
      const pong = (await c.waitFor(/<iq [^>]*id="p1"[^>]*\/>/))[0];
      assert.match(pong, /to="juliet@localhost\/balcony"/);
      assert.doesNotMatch(c.received, /id="u2"/);
      c.clear();
      // An iq to one's own full JID arrives with the true sender in from.
      c.send(
        "<iq type='get' id='s1' to='juliet@localhost/balcony' from='romeo@localhost/x'>" +
          "<query xmlns='urn:example:self'/></iq>",
      );
      const self = (await c.waitFor(/<iq [^>]*id="s1"[^>]*>/))[0];
      assert.match(self, /from="juliet@localhost\/balcony"/);
      c.clear();
      c.send("<iq type='get' id='m1' to='not a jid@@localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      const bad = (await c.waitFor(/<iq [^>]*id="m1"[^>]*>.*?<\/iq>/s))[0];
      assert.match(bad, /<jid-malformed /);
      c.clear();
      c.send("<iq type='get' id='b1' to='localhost'/>");
      const badReq = (await c.waitFor(/<iq [^>]*id="b1"[^>]*>.*?<\/iq>/s))[0];
      assert.match(badReq, /<bad-request /);
    } finally {
      c.close();
    }
  });
});

Deno.test("an unknown top-level element gets unsupported-stanza-type", async () => {
  await withServer(async (t) => {
    const c = await RawClient.connect(t.port);
    try {
      await c.login("juliet", "secret");
      c.send("<foo xmlns='urn:example:foo'/>");
      await c.waitFor(/<stream:error><unsupported-stanza-type /);
      await c.waitClosed();
    } finally {
      c.close();
    }
  });
});

Deno.test("the newer session wins a resource conflict", async () => {
  await withServer(async (t) => {
    const a = await RawClient.connect(t.port);
    const b = await RawClient.connect(t.port);
    try {
      await a.login("juliet", "secret", "phone");
      await b.login("juliet", "secret", "phone");
      await a.waitFor(/<stream:error><conflict /);
      await a.waitClosed();
      assert.equal(t.server.sessions.full.get("juliet@localhost/phone")?.conn.closed, false);
    } finally {
      a.close();
      b.close();
    }
  });
});

Deno.test("unauthenticated connections time out after c2s_timeout", async () => {
  await withServer(async (t) => {
    const c = await RawClient.connect(t.port);
    try {
      c.send(streamHeader());
      await c.waitFor(/<\/stream:features>/);
      c.send(" "); // whitespace keepalives are fine, but do not authenticate
      await c.waitFor(/<stream:error><connection-timeout /, 5000);
      await c.waitClosed();
    } finally {
      c.close();
    }
  }, { ...PLAIN_OK, c2s_timeout: 1 } as typeof PLAIN_OK);
});
