/** Listening sockets: addresses as people read them, and connections handed over. */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { Listener } from "../../../core/net/listener.ts";
import { getLogger } from "../../../core/log.ts";

Deno.test("a listener names its address readably ([::1]:port, 127.0.0.1:port) and hands over connections", async () => {
  const log = getLogger("test");
  for (
    const [host, shape] of [["127.0.0.1", /^127\.0\.0\.1:\d+$/], ["::1", /^\[::1\]:\d+$/]] as const
  ) {
    let accepted = 0;
    const l = new Listener({ host, port: 0, log, healthCheckMs: 0 }, (socket) => {
      accepted++;
      socket.destroy();
    });
    try {
      await l.start();
    } catch (e) {
      if (host === "::1") continue; // no IPv6 loopback on this machine
      throw e;
    }
    try {
      assert.match(l.address(), shape);
      await new Promise<void>((resolve, reject) => {
        const c = connect({ host, port: l.port()! }, () => {
          c.destroy();
          resolve();
        });
        c.on("error", reject);
      });
      for (let i = 0; i < 50 && accepted === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(accepted, 1);
    } finally {
      l.close();
    }
  }
});

Deno.test("a listener that cannot bind says where", async () => {
  const log = getLogger("test");
  const a = new Listener({ host: "127.0.0.1", port: 0, log, healthCheckMs: 0 }, (s) => s.destroy());
  await a.start();
  const b = new Listener(
    { host: "127.0.0.1", port: a.port(), log, healthCheckMs: 0 },
    (s) => s.destroy(),
  );
  try {
    await assert.rejects(
      () => b.start(),
      /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE|in use/i,
    );
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("an idle listener checks itself: left alone when it accepts, reopened when it does not", async () => {
  const warnings: string[] = [];
  const log = { ...getLogger("test"), warn: (m: string) => void warnings.push(m) };
  let accepted = 0;
  const l = new Listener({ host: "127.0.0.1", port: 0, log, healthCheckMs: 100 }, (s) => {
    accepted++;
    s.destroy();
  });
  await l.start();
  const connectOnce = () =>
    new Promise<void>((resolve, reject) => {
      const c = connect({ host: "127.0.0.1", port: l.port()! }, () => {
        c.destroy();
        resolve();
      });
      c.on("error", reject);
    });
  try {
    // Idle and healthy: several checks, no reopening, and its own probes are not handed over.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(warnings, []);
    assert.equal(accepted, 0);
    // Its accept path stops (as Deno's does at EMFILE): the check notices and reopens.
    // deno-lint-ignore no-explicit-any
    (l as any).server.removeAllListeners("connection");
    // (Two failed probes of up to 3 s each, in a row, before it reopens.)
    for (let i = 0; i < 200 && warnings.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(warnings[0] ?? "", /stopped accepting/);
    for (let i = 0; i < 50 && accepted === 0; i++) {
      await connectOnce().catch(() => {});
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(accepted > 0, "the reopened listener does not accept");
  } finally {
    l.close();
  }
});
