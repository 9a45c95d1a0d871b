/**
 * Where a domain's XMPP server service is (RFC 6120 §3.2.1, XEP-0368): the
 * SRV records of `_xmpps-server._tcp.<domain>` (direct TLS) and
 * `_xmpp-server._tcp.<domain>`, in the order to try them — by priority,
 * then by weight at random (RFC 2782), direct TLS first where priorities
 * tie — each target's addresses (A and AAAA) in turn; a lone "." target
 * means the domain offers no such service. Without SRV records, the
 * domain's own addresses on the default port (5269), as RFC 6120 §3.2.2
 * says. This is the first step of server-to-server connections.
 *
 * @example
 * ```ts
 * for (const t of await resolveServer("example.com")) {
 *   // try t.address:t.port, with TLS from the first byte when t.directTls
 * }
 * ```
 * @module
 */

/** One place to try. */
export interface Target {
  /** The SRV target (or the domain itself), for certificate checks and logs. */
  host: string;
  /** An IPv4 or IPv6 address of it. */
  address: string;
  port: number;
  /** XEP-0368: TLS from the first byte. */
  directTls: boolean;
}

export interface ResolveOptions {
  /** The DNS server to ask (default: the system's). */
  nameServer?: { ipAddr: string; port?: number };
  /** Default port when there are no SRV records. */
  defaultPort?: number;
  /** Random numbers in [0, 1), for the weighted order (tests pass their own). */
  random?: () => number;
}

interface Srv {
  priority: number;
  weight: number;
  port: number;
  target: string;
  directTls: boolean;
}

/** Most SRV records and addresses considered, whatever a zone holds. */
const MAX_RECORDS = 32;

/**
 * The order to try a domain's server in; empty when it has no XMPP server
 * service (a "." SRV target) or none of its names has an address.
 */
export async function resolveServer(domain: string, opts: ResolveOptions = {}): Promise<Target[]> {
  const dnsOpts = opts.nameServer ? { nameServer: opts.nameServer } : undefined;
  const srv = async (service: string, directTls: boolean): Promise<Srv[]> => {
    try {
      const records = await Deno.resolveDns(`${service}._tcp.${domain}`, "SRV", dnsOpts);
      return records.slice(0, MAX_RECORDS).map((r) => ({
        ...r,
        target: r.target.replace(/\.$/, ""),
        directTls,
      }));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
  };
  const records = [...await srv("_xmpps-server", true), ...await srv("_xmpp-server", false)];
  if (records.length === 1 && records[0].target === "") return []; // "." : no service
  const ordered = records.length > 0
    ? orderSrv(records.filter((r) => r.target !== ""), opts.random ?? Math.random)
    : [{
      priority: 0,
      weight: 0,
      port: opts.defaultPort ?? 5269,
      target: domain,
      directTls: false,
    }];
  const out: Target[] = [];
  for (const r of ordered) {
    for (const address of await addressesOf(r.target, dnsOpts)) {
      out.push({ host: r.target, address, port: r.port, directTls: r.directTls });
      if (out.length >= MAX_RECORDS) return out;
    }
  }
  return out;
}

/** RFC 2782: by priority; within one, weighted random (direct TLS first on a tie of all else). */
export function orderSrv(records: Srv[], random: () => number): Srv[] {
  const byPriority = new Map<number, Srv[]>();
  for (const r of records) {
    const list = byPriority.get(r.priority) ?? [];
    list.push(r);
    byPriority.set(r.priority, list);
  }
  const out: Srv[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    // Direct TLS first, so that zero weights (taken in order) prefer it.
    const left = byPriority.get(priority)!.sort((a, b) =>
      Number(b.directTls) - Number(a.directTls)
    );
    while (left.length > 0) {
      const total = left.reduce((n, r) => n + r.weight, 0);
      let pick = 0;
      if (total > 0) {
        let point = random() * total;
        pick = left.findIndex((r) => (point -= r.weight) < 0);
        if (pick === -1) pick = left.length - 1;
      }
      out.push(left.splice(pick, 1)[0]);
    }
  }
  return out;
}

async function addressesOf(
  host: string,
  dnsOpts: { nameServer: { ipAddr: string; port?: number } } | undefined,
): Promise<string[]> {
  const lookup = async (type: "A" | "AAAA") => {
    try {
      return await Deno.resolveDns(host, type, dnsOpts);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
  };
  const [v6, v4] = await Promise.all([lookup("AAAA"), lookup("A")]);
  return [...v6, ...v4].slice(0, MAX_RECORDS);
}
