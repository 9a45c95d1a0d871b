/**
 * What the server has acknowledged survives `kill -9`: a client sends
 * messages under stream management and asks for acknowledgements as it
 * goes; the server process is killed mid-flow; after a restart every message
 * the server acknowledged is in the sender's archive and in the recipient's
 * offline storage and archive.
 */
import assert from "node:assert/strict";
import { serverProcess } from "../helpers/process.ts";

const N = 3000;

Deno.test("kill -9 mid-flow: every message the server acknowledged is stored after the restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-durable-" });
  const { start, connect } = await serverProcess(dir, {
    limits: false,
    offline_message_limit: 100_000,
  }, ["juliet", "romeo"]);
  let server = start();
  try {
    const juliet = await connect();
    await juliet.login("juliet", "pw", "phone");
    juliet.send("<enable xmlns='urn:xmpp:sm:3'/>");
    await juliet.waitFor(/<enabled /);
    // Messages in batches, each followed by a request for the count.
    let sent = 0;
    const sending = (async () => {
      while (sent < N && !juliet.closed) {
        let burst = "";
        for (let k = 0; k < 20; k++, sent++) {
          burst +=
            `<message to='romeo@localhost' type='chat' id='m${sent}'><body>m${sent}</body></message>`;
        }
        juliet.send(burst + "<r xmlns='urn:xmpp:sm:3'/>");
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    // Kill the server once a good part has been acknowledged, mid-flow.
    await juliet.waitFor(/<a xmlns="urn:xmpp:sm:3" h="(1[0-9]{3})"\/>/, 60_000);
    server.kill("SIGKILL");
    await server.status;
    await sending;
    const acked = Math.max(
      ...[...juliet.received.matchAll(/<a [^>]*h="(\d+)"/g)].map((m) => +m[1]),
    );
    juliet.close();
    assert.ok(acked >= 1000 && acked < N, `killed mid-flow after ${acked} acknowledged`);

    server = start();
    const romeo = await connect();
    await romeo.login("romeo", "pw", "desk");
    // Romeo's offline messages: every acknowledged one, in order.
    romeo.send("<presence/>");
    await romeo.waitFor(new RegExp(`<body>m${acked - 1}</body>`), 60_000);
    const offline = [...romeo.received.matchAll(/<body>m(\d+)<\/body>/g)].map((m) => +m[1]);
    assert.deepEqual(offline.slice(0, acked), Array.from({ length: acked }, (_, i) => i));
    // And both archives have them.
    for (const [who, c] of [["romeo", romeo], ["juliet", await connect()]] as const) {
      if (who === "juliet") await c.login("juliet", "pw", "laptop");
      c.clear();
      c.send(
        "<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'>" +
          "<set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set></query></iq>",
      );
      const count = +(await c.waitFor(/<count>(\d+)<\/count>/))[1];
      assert.ok(count >= acked, `${who}'s archive has ${count} of ${acked} acknowledged messages`);
      c.close();
    }
  } finally {
    server.kill("SIGKILL");
    await server.status.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
