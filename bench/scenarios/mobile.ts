/**
 * What phones cost the server (Cadence only: the peers' benchmark
 * configurations have no archive, stream management or SASL2):
 *
 * - mam-query: the latest 50 messages of a 100,000-message archive, asked
 *   200 times in a row: server CPU per query, latency p50/p99;
 * - mam-write: server CPU per routed message (P=100, W=20) with the archive
 *   on, against the same run without it: what archiving adds per message
 *   (also for the peers, with their own mod_mam, with `--peers`);
 * - mam-expiry: deleting the oldest 10% of archives of 10k, 100k and 1M
 *   messages, as the expiry does it (in batches, by time), in this process
 *   on the SQLite driver: time per run and per 1,000 items;
 * - sm-hibernate: RSS per session hibernating under stream management
 *   (K sessions resumable, then their connections cut);
 * - login-fast: server CPU per SASL2 login with a FAST token
 *   (HT-SHA-256-NONE) against a SASL2 SCRAM-SHA-1 login with the password,
 *   both after STARTTLS, with Bind2.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { BenchConnection, type Target } from "../connection.ts";
import { runPool } from "../pool.ts";
import { type Row, row } from "../report.ts";
import { SERVER_HOST } from "../server_process.ts";
import {
  type AccountSetup,
  CADENCE,
  CADENCE_MODULES,
  numbered,
  type RunningServer,
  type ServerUnderTest,
} from "../servers.ts";
import { OPEN_MODE, target, warmAccounts, warmUp } from "../open_logins.ts";
import { type Account, closeSession, openSession } from "../xmpp_steps.ts";
import { LOADED, routeSetup, runRoute } from "./route.ts";
import { encodeStanza } from "../../core/storage/stanza_codec.ts";
import { SqliteDriver } from "../../core/storage/sqlite.ts";
import { newId } from "../../core/storage/types.ts";
import { message } from "../../core/xml/stanza.ts";
import { ScramClient } from "../../core/sasl/scram.ts";
import { percentile } from "../stats.ts";

const T = 30_000;
const HEADER = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' " +
  "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
const FEATURES_END = /<\/stream:features>/;
const MOBILE_MODULES = [...CADENCE_MODULES, "smacks", "mam"];

/** Everything the scenario measured, one run. */
export interface MobileRun {
  mamQueryCpuMs: number;
  mamQueryP50Ms: number;
  mamQueryP99Ms: number;
  routeCpuUs: number;
  routeMamCpuUs: number;
  expiry: { size: number; deleted: number; ms: number }[];
  hibernatingKiB: number;
  boundKiB: number;
  plainBoundKiB: number;
  scramLoginCpuMs: number;
  fastLoginCpuMs: number;
  notes: string[];
}

export const MOBILE_SETUP = "modules as the other scenarios plus smacks and mam; mam-write: " +
  "routed messages (100 pairs, 20 in flight) on a server without and with its archive (mam, " +
  "archiving every message: Cadence on SQLite, Prosody mod_mam on its file storage, ejabberd " +
  "mod_mam default: always on Mnesia); mam-query: 200 queries for the latest 50 of 100,000 " +
  "archived messages; mam-expiry in this process on the SQLite driver, batches of 1,000, 1,000 " +
  "messages per user interleaved at random; sm-hibernate: 2,000 sessions bound without SM (a " +
  "fresh server), then 2,000 resumable ones whose connections are cut; " +
  "login-fast: 2,000 logins each way, 50 at a time, STARTTLS, SASL2 with Bind2";

/** Seeds `n` chat messages into a user's archive in a Cadence data directory, in one transaction. */
function seedArchive(dataDir: string, user: string, n: number) {
  const db = new DatabaseSync(`${dataDir}/cadence.sqlite`);
  try {
    const insert = db.prepare(
      `INSERT INTO archive (host, store, user, sort_id, key, "when", "with", stanza)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const start = Date.now() / 1000 - n / 100;
    db.exec("BEGIN");
    for (let i = 0; i < n; i++) {
      const m = message(
        { from: "bob@localhost/desk", to: `${user}@localhost`, type: "chat" },
        `m${i}`,
      );
      insert.run(
        "localhost",
        "archive",
        user,
        i + 1,
        newId((start + i / 100) * 1000),
        start + i / 100,
        "bob@localhost",
        encodeStanza(m),
      );
    }
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

async function mamQuery(notes: string[]) {
  const setup: AccountSetup = {
    accounts: [...warmAccounts(50), { username: "alice", password: "any" }],
    cadence: { modules_enabled: MOBILE_MODULES },
  };
  const template = await CADENCE.prepare(setup);
  try {
    seedArchive(`${template.dir}/data`, "alice", 100_000);
    const server = await CADENCE.start(template);
    try {
      await warmUp(server.port, 50);
      const c = await openSession(
        target(server.port, 1),
        { username: "alice", password: "any" },
        "q",
        OPEN_MODE,
      );
      const ask = async (n: number) => {
        c.buffer = "";
        c.send(
          `<iq type='set' id='q${n}'><query xmlns='urn:xmpp:mam:2'>` +
            "<set xmlns='http://jabber.org/protocol/rsm'><max>50</max><before/></set></query></iq>",
        );
        await c.waitFor(new RegExp(`<iq [^>]*id="q${n}"[^>]*>`), T);
      };
      for (let i = 0; i < 20; i++) await ask(i);
      const cpu0 = await server.cpuMs();
      const latencies: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        await ask(100 + i);
        latencies.push(performance.now() - t0);
      }
      const cpu = (await server.cpuMs()) - cpu0;
      if (!/<fin /.test(c.buffer) && !/id="q299"/.test(c.buffer)) notes.push("mam-query: no fin");
      await closeSession(c, T);
      return { cpuMs: cpu / 200, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
    } finally {
      await server.stop();
    }
  } finally {
    await CADENCE.remove(template);
  }
}

async function routeCpu(sut: ServerUnderTest, archive: boolean): Promise<number> {
  const setup = { ...routeSetup(LOADED.pairs, 50), archive };
  const template = await sut.prepare(setup);
  try {
    const r = await runRoute(sut, template, LOADED, 200, 50);
    return r.cpuUsPerMessage;
  } finally {
    await sut.remove(template);
  }
}

/** What archiving costs a server per routed message: CPU without and with its archive. */
export interface ArchiveCost {
  routeCpuUs: number;
  routeMamCpuUs: number;
}

/** Measures {@link ArchiveCost} for any server (the peers with their own mod_mam). */
export async function archiveCost(sut: ServerUnderTest): Promise<ArchiveCost> {
  return { routeCpuUs: await routeCpu(sut, false), routeMamCpuUs: await routeCpu(sut, true) };
}

/** The mam-write rows of runs. */
export function archiveCostRows(runs: ArchiveCost[]): Row[] {
  return [
    row("mam-write", "server CPU µs/message, no archive", runs.map((r) => r.routeCpuUs), 1),
    row("mam-write", "server CPU µs/message, archive on", runs.map((r) => r.routeMamCpuUs), 1),
    row(
      "mam-write",
      "archiving adds µs/message",
      runs.map((r) => r.routeMamCpuUs - r.routeCpuUs),
      1,
    ),
  ];
}

export async function expiry(size: number) {
  const dir = await Deno.makeTempDir({ prefix: "cadence-bench-expiry-" });
  try {
    new SqliteDriver({ dataPath: dir }).close(); // the schema
    const users = Math.max(1, Math.floor(size / 1000));
    const db = new DatabaseSync(`${dir}/cadence.sqlite`);
    const insert = db.prepare(
      `INSERT INTO archive (host, store, user, sort_id, key, "when", "with", stanza)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const json = encodeStanza(message({ type: "chat", from: "a@localhost/r" }, "hello there"));
    const counts = new Array<number>(users).fill(0);
    db.exec("BEGIN");
    for (let i = 0; i < size; i++) {
      const user = Math.floor(Math.random() * users); // users' messages interleave at random
      insert.run(
        "localhost",
        "archive",
        `u${user}`,
        ++counts[user],
        newId((1_000_000 + i) * 1000),
        1_000_000 + i,
        "a@localhost",
        json,
      );
    }
    db.exec("COMMIT");
    db.close();
    const driver = new SqliteDriver({ dataPath: dir });
    const archive = driver.open("localhost", "archive", "archive");
    const cutoff = 1_000_000 + size / 10;
    const t0 = performance.now();
    let deleted = 0;
    for (;;) {
      const n = await archive.expire(cutoff, 1000);
      deleted += n;
      if (n < 1000) break;
    }
    const ms = performance.now() - t0;
    driver.close();
    return { size, deleted, ms };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * RSS per session: K sessions bound (with stream management enabled when
 * `sm`), then, with `sm`, their connections cut so that they hibernate.
 */
export async function hibernation(notes: string[], sm: boolean) {
  const K = 2000;
  const setup: AccountSetup = {
    accounts: [...warmAccounts(50), ...numbered("sm", K)],
    cadence: { modules_enabled: MOBILE_MODULES, max_user_sessions: 10 },
  };
  const template = await CADENCE.prepare(setup);
  try {
    const server = await CADENCE.start(template);
    try {
      await warmUp(server.port, 50);
      await settle(server);
      const before = await server.rssKiB();
      const conns: BenchConnection[] = [];
      const r = await runPool(K, 50, 10 * 60_000, async (i) => {
        const c = await openSession(
          target(server.port, i),
          { username: `sm${i}`, password: "any" },
          "phone",
          OPEN_MODE,
        );
        if (sm) {
          c.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
          await c.waitFor(/<enabled /, T);
        }
        conns.push(c);
      });
      if (r.failed) notes.push(`sm-hibernate: ${r.failed} sessions failed: ${r.errors[0]}`);
      await settle(server);
      const bound = await server.rssKiB();
      if (!sm) {
        for (const c of conns) c.destroy();
        return { boundKiB: (bound - before) / conns.length, hibernatingKiB: NaN };
      }
      for (const c of conns) c.destroy(); // cut, no </stream:stream>
      await new Promise((res) => setTimeout(res, 3000));
      await settle(server);
      const hibernating = await server.rssKiB();
      return {
        boundKiB: (bound - before) / conns.length,
        hibernatingKiB: (hibernating - before) / conns.length,
      };
    } finally {
      await server.stop();
    }
  } finally {
    await CADENCE.remove(template);
  }
}

/** Waits until the server's RSS stops moving (at most 20 s). */
async function settle(server: RunningServer) {
  let last = await server.rssKiB();
  for (let i = 0; i < 20; i++) {
    await new Promise((res) => setTimeout(res, 1000));
    const now = await server.rssKiB();
    if (Math.abs(now - last) < 256) return;
    last = now;
  }
}

/** A SASL2 login after STARTTLS: SCRAM-SHA-1 with the password, or HT-SHA-256-NONE with a token. */
async function sasl2Login(
  to: Target,
  account: Account,
  uaid: string,
  how: { scram: Map<string, Uint8Array>; requestToken?: boolean } | {
    token: string;
    count: number;
  },
): Promise<string | undefined> {
  const c = await BenchConnection.open(to, T);
  try {
    c.send(HEADER);
    await c.waitFor(FEATURES_END, T);
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await c.waitFor(/<proceed/, T);
    await c.startTls(T);
    c.send(HEADER);
    await c.waitFor(FEATURES_END, T);
    const ua = `<user-agent id='${uaid}'/><bind xmlns='urn:xmpp:bind:0'/>`;
    let token: string | undefined;
    if ("scram" in how) {
      const scram = new ScramClient("SHA-1", account.username, account.password, {
        cache: how.scram,
      });
      c.send(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'>" +
          `<initial-response>${btoa(scram.first())}</initial-response>${ua}` +
          (how.requestToken
            ? "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>"
            : "") +
          "</authenticate>",
      );
      const ch = await c.waitFor(/<challenge xmlns="urn:xmpp:sasl:2">([^<]*)<\/challenge>/, T);
      c.send(
        `<response xmlns='urn:xmpp:sasl:2'>${btoa(await scram.final(atob(ch[1])))}</response>`,
      );
      const ok = await c.waitFor(/<success xmlns="urn:xmpp:sasl:2">[^]*?<\/success>/, T);
      token = /token="([^"]+)"/.exec(ok[0])?.[1];
    } else {
      const key = await crypto.subtle.importKey(
        "raw",
        new TextEncoder().encode(how.token),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      );
      const mac = new Uint8Array(
        await crypto.subtle.sign("HMAC", key, new TextEncoder().encode("Initiator")),
      );
      const msg = new Uint8Array([...new TextEncoder().encode(account.username), 0, ...mac])
        .toBase64();
      c.send(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'>" +
          `<initial-response>${msg}</initial-response>${ua}` +
          `<fast xmlns='urn:xmpp:fast:0' count='${how.count}'/></authenticate>`,
      );
      await c.waitFor(/<success xmlns="urn:xmpp:sasl:2">/, T);
    }
    c.send("<presence/>");
    await closeSession(c, T);
    return token;
  } catch (e) {
    c.destroy();
    throw e;
  }
}

async function fastLogins(notes: string[]) {
  const accounts = Array.from(
    { length: 50 },
    (_, w) => ({ username: `fast${w}`, password: `pw-${w}` }),
  );
  const template = await CADENCE.prepare({
    accounts,
    auth: "scram",
    cadence: { modules_enabled: [...CADENCE_MODULES, "tls"] },
  });
  try {
    const server = await CADENCE.start(template);
    try {
      const to = (i: number): Target => ({
        host: SERVER_HOST,
        port: server.port,
        localAddress: `127.0.0.${(i % 8) + 1}`,
      });
      const cache = new Map<string, Uint8Array>();
      const tokens: string[] = [];
      const counts: number[] = [];
      for (let w = 0; w < accounts.length; w++) {
        tokens[w] =
          (await sasl2Login(to(w), accounts[w], `ua-${w}`, { scram: cache, requestToken: true }))!;
        counts[w] = 0;
      }
      const N = 2000;
      const measure = async (kind: "scram" | "fast") => {
        const cpu0 = await server.cpuMs();
        const r = await runPool(N, 50, 10 * 60_000, async (i, w) => {
          if (kind === "scram") await sasl2Login(to(i), accounts[w], `ua-${w}`, { scram: cache });
          else {await sasl2Login(to(i), accounts[w], `ua-${w}`, {
              token: tokens[w],
              count: ++counts[w],
            });}
        });
        if (r.failed) notes.push(`login-${kind}: ${r.failed} failed: ${r.errors[0]}`);
        return ((await server.cpuMs()) - cpu0) / r.completed;
      };
      await measure("scram"); // warm-up of both paths
      await measure("fast");
      return { scram: await measure("scram"), fast: await measure("fast") };
    } finally {
      await server.stop();
    }
  } finally {
    await CADENCE.remove(template);
  }
}

/** One run of every measurement. */
export async function runMobile(log: (s: string) => void): Promise<MobileRun> {
  const notes: string[] = [];
  const q = await mamQuery(notes);
  log(
    `mam-query: ${q.cpuMs.toFixed(2)} ms CPU/query, p50 ${q.p50.toFixed(2)} ms, p99 ${
      q.p99.toFixed(2)
    } ms`,
  );
  const plain = await routeCpu(CADENCE, false);
  const mam = await routeCpu(CADENCE, true);
  log(`mam-write: ${plain.toFixed(1)} µs/msg without the archive, ${mam.toFixed(1)} with it`);
  const exp = [];
  for (const size of [10_000, 100_000, 1_000_000]) {
    const e = await expiry(size);
    exp.push(e);
    log(
      `mam-expiry: ${e.deleted} of ${size} in ${e.ms.toFixed(0)} ms (${
        (e.ms / (e.deleted / 1000)).toFixed(2)
      } ms per 1,000)`,
    );
  }
  const plainSessions = await hibernation(notes, false);
  const h = await hibernation(notes, true);
  log(
    `sm-hibernate: ${plainSessions.boundKiB.toFixed(1)} KiB/session bound without SM, ` +
      `${h.boundKiB.toFixed(1)} with SM, ${h.hibernatingKiB.toFixed(1)} KiB hibernating`,
  );
  const f = await fastLogins(notes);
  log(`login-fast: SCRAM ${f.scram.toFixed(3)} ms CPU/login, FAST ${f.fast.toFixed(3)} ms`);
  return {
    mamQueryCpuMs: q.cpuMs,
    mamQueryP50Ms: q.p50,
    mamQueryP99Ms: q.p99,
    routeCpuUs: plain,
    routeMamCpuUs: mam,
    expiry: exp,
    hibernatingKiB: h.hibernatingKiB,
    boundKiB: h.boundKiB,
    plainBoundKiB: plainSessions.boundKiB,
    scramLoginCpuMs: f.scram,
    fastLoginCpuMs: f.fast,
    notes,
  };
}

export function mobileRows(runs: MobileRun[]): Row[] {
  const rows: Row[] = [
    row(
      "mam-query",
      "server CPU ms/query (latest 50 of 100k)",
      runs.map((r) => r.mamQueryCpuMs),
      2,
    ),
    row("mam-query", "latency p50 ms", runs.map((r) => r.mamQueryP50Ms), 2),
    row("mam-query", "latency p99 ms", runs.map((r) => r.mamQueryP99Ms), 2),
    ...archiveCostRows(runs),
  ];
  for (let i = 0; i < (runs[0]?.expiry.length ?? 0); i++) {
    const size = runs[0].expiry[i].size;
    rows.push(row("mam-expiry", `ms to expire 10% of ${size}`, runs.map((r) => r.expiry[i].ms), 0));
    rows.push(
      row(
        "mam-expiry",
        `ms per 1,000 expired (of ${size})`,
        runs.map((r) => r.expiry[i].ms / (r.expiry[i].deleted / 1000)),
        2,
      ),
    );
  }
  rows.push(
    row(
      "sm-hibernate",
      "KiB per bound session without SM",
      runs.map((r) => r.plainBoundKiB),
      1,
    ),
    row("sm-hibernate", "KiB per bound SM session", runs.map((r) => r.boundKiB), 1),
    row("sm-hibernate", "KiB per hibernating session", runs.map((r) => r.hibernatingKiB), 1),
    row(
      "login-fast",
      "server CPU ms/login, SASL2 SCRAM-SHA-1",
      runs.map((r) => r.scramLoginCpuMs),
      3,
    ),
    row(
      "login-fast",
      "server CPU ms/login, SASL2 FAST token",
      runs.map((r) => r.fastLoginCpuMs),
      3,
    ),
  );
  return rows;
}
