/** The reading side of send_floor.ts: N connections that read until `total` bytes came. */
import net from "node:net";
const [port, n, total] = Deno.args.map(Number);
let got = 0;
await Promise.all(Array.from({ length: n }, () =>
  new Promise<void>((r) => {
    const c = net.connect(port, "127.0.0.1", () => r());
    c.on("data", (d) => {
      got += d.length;
      if (got >= total) Deno.exit(0);
    });
  })));
