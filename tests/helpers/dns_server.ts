/**
 * A small authoritative DNS server on loopback UDP for tests: it answers A,
 * AAAA and SRV questions from a table (NXDOMAIN for names it does not know,
 * an empty answer for a known name without that type). The machines these
 * tests run on reach no real DNS, and a server-to-server test needs domains
 * that point at 127.0.0.x: this is the real protocol, answered locally.
 *
 * @example
 * ```ts
 * const dns = await startDnsServer({ "_xmpp-server._tcp.b.test": [{ srv: [0, 5, 5269, "b.test"] }] });
 * await Deno.resolveDns("_xmpp-server._tcp.b.test", "SRV", { nameServer: dns.nameServer });
 * dns.close();
 * ```
 * @module
 */
import { createSocket } from "node:dgram";
import { Buffer } from "node:buffer";

/** A record: an address (v4 or v6), or SRV [priority, weight, port, target]. */
export type DnsRecord = { a: string } | { aaaa: string } | {
  srv: [number, number, number, string];
};

const TYPES = { A: 1, AAAA: 28, SRV: 33 } as const;

export interface DnsServer {
  nameServer: { ipAddr: string; port: number };
  /** Questions asked so far, as "name TYPE". */
  asked: string[];
  close(): void;
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, "").split(".").filter((p) => p.length > 0);
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, "ascii")])),
    Buffer.from([0]),
  ]);
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail = ""] = ip.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = ip.includes("::")
    ? [...left, ...Array(8 - left.length - right.length).fill("0"), ...right]
    : left;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || "0", 16), i * 2));
  return out;
}

/** Starts the server with `zone`: owner name → its records. */
export async function startDnsServer(zone: Record<string, DnsRecord[]>): Promise<DnsServer> {
  const table = new Map(
    Object.entries(zone).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ""), v]),
  );
  const socket = createSocket("udp4");
  const asked: string[] = [];
  socket.on("message", (q: Buffer, peer) => {
    // Header (12 bytes), then one question: labels, type, class.
    let at = 12;
    const labels: string[] = [];
    while (q[at] !== 0) {
      labels.push(q.subarray(at + 1, at + 1 + q[at]).toString("ascii"));
      at += q[at] + 1;
    }
    const questionEnd = at + 5;
    const qtype = q.readUInt16BE(at + 1);
    const name = labels.join(".").toLowerCase();
    const typeName = Object.entries(TYPES).find(([, v]) => v === qtype)?.[0] ?? String(qtype);
    asked.push(`${name} ${typeName}`);
    const records = table.get(name);
    const answers: Buffer[] = [];
    for (const r of records ?? []) {
      let type: number, rdata: Buffer;
      if ("a" in r) [type, rdata] = [TYPES.A, Buffer.from(r.a.split(".").map(Number))];
      else if ("aaaa" in r) [type, rdata] = [TYPES.AAAA, ipv6Bytes(r.aaaa)];
      else {
        const [priority, weight, port, target] = r.srv;
        const head = Buffer.alloc(6);
        head.writeUInt16BE(priority, 0);
        head.writeUInt16BE(weight, 2);
        head.writeUInt16BE(port, 4);
        [type, rdata] = [TYPES.SRV, Buffer.concat([head, encodeName(target)])];
      }
      if (type !== qtype) continue;
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      rr.writeUInt16BE(type, 2);
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(rdata.length, 10);
      answers.push(rr, rdata);
    }
    const header = Buffer.alloc(12);
    q.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8400 | (q.readUInt16BE(2) & 0x0100) | (records ? 0 : 3), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length / 2, 6);
    socket.send(
      Buffer.concat([header, q.subarray(12, questionEnd), ...answers]),
      peer.port,
      peer.address,
    );
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    nameServer: { ipAddr: "127.0.0.1", port: socket.address().port },
    asked,
    close: () => socket.close(),
  };
}
