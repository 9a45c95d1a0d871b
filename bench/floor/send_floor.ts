/**
 * The floor under a fan-out on this machine: what one write of a 400-byte
 * stanza to each of 500 loopback TCP sockets costs a Deno process through
 * node:net (Cadence's socket layer), with the readers in another process.
 * A MUC delivery cannot cost the server less than this; compare with
 * `python3 bench/floor/send_floor.py` (the bare send() system call).
 *
 *     deno run -A bench/floor/send_floor.ts
 * @module
 */
import net from "node:net";
const N = 500, MSGS = 200;
const server = net.createServer();
const accepted: net.Socket[] = [];
server.on("connection", (s) => {
  s.setNoDelay(true);
  accepted.push(s);
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const port = (server.address() as net.AddressInfo).port;
// Readers in a separate process, so their CPU is not ours.
const reader = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    new URL("./reader.ts", import.meta.url).pathname,
    String(port),
    String(N),
    String(N * MSGS * 400),
  ],
  stdout: "inherit",
}).spawn();
while (accepted.length < N) await new Promise((r) => setTimeout(r, 20));
const payload = "<message from='bench@conference.localhost/nick0' type='groupchat' id='x'><body>" +
  "x".repeat(300) + "</body></message>";
const cpu = () => {
  const s = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(s[11]) + Number(s[12])) * 10;
};
const t0 = cpu();
for (let m = 0; m < MSGS; m++) {
  for (const s of accepted) s.write(payload.slice(0, 400));
  await new Promise((r) => setTimeout(r, 2));
}
const t1 = cpu();
console.log(
  `server CPU per write: ${((t1 - t0) * 1000 / (N * MSGS)).toFixed(2)} µs (${t1 - t0} ms for ${
    N * MSGS
  } writes)`,
);
await reader.status;
server.close();
for (const s of accepted) s.destroy();
Deno.exit(0);
