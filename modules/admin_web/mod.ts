/**
 * A web admin at `/admin` on the server's HTTP listeners (as ejabberd's web
 * admin; Prosody has none built in): the server's state at a glance (hosts,
 * accounts, sessions, uptime, memory, charts of the last hour), and per
 * host the accounts (create, change password, delete) and the online
 * sessions (full JID, address, client, TLS) with a kick button.
 *
 * Not loaded by default: enable it with `modules_enabled: ["admin_web"]`.
 * Only the JIDs in `admins` log in (with their account's password); an
 * admin listed in a VirtualHost's own `admins` manages that host only.
 * Pages are rendered on the server (no script; charts are inline SVG), every
 * value escaped (`html.ts`). Sessions are a random token in an HttpOnly,
 * SameSite=Strict cookie (`cadence_admin`); every form carries the
 * session's CSRF token and a foreign Origin is refused (`auth.ts`).
 *
 * Options: `admin_web_sample_interval` (10 s between samples),
 * `admin_web_samples` (360 kept: an hour at 10 s), `admin_web_session_timeout`
 * (30 minutes idle), `admin_web_max_sessions` (50 logged in at once; the
 * stalest goes), `admin_web_login_attempts` (5 failed logins a minute per
 * address, then 429), `admin_web_max_accounts` (200 accounts listed on a
 * page; a filter finds the others). It is served at `http_paths.admin_web`,
 * else `/admin`.
 * @module
 */
import type { Module } from "../../core/moduleapi.ts";
import type { Session } from "../../core/session.ts";
import { BodyTooLarge, readText, type RequestInfo } from "../../core/http/server.ts";
import { prepDomain, prepNode, split } from "../../core/jid.ts";
import { UserError } from "../../core/usermanager.ts";
import { CADENCE_VERSION } from "../../core/version.ts";
import {
  type AdminSession,
  AdminSessions,
  COOKIE,
  LoginLimiter,
  originAllowed,
  readCookie,
  sameSecret,
  sessionCookie,
} from "./auth.ts";
import { page, redirect, refusal } from "./html.ts";
import { type Frame, hostPage, loginPage, overviewPage, type SessionRow } from "./pages.ts";
import { chart, mib, SampleRing } from "./samples.ts";

export const meta = { scope: "global" };

const CAPS_NS = "http://jabber.org/protocol/caps";
const MAX_FORM = 64 * 1024;

/** A VirtualHost the admin serves: its module instance and its bound sessions. */
interface HostEntry {
  module: Module;
  sessions: Set<Session>;
}

export default async function adminWeb(module: Module) {
  const http = await module.depends<{ pathOf(name: string): string | undefined }>("http");
  const log = module.log;
  const interval = module.getOptionPeriod("admin_web_sample_interval", 10);
  const ring = new SampleRing(module.getOptionInteger("admin_web_samples", 360, { min: 2 }));
  const sessions = new AdminSessions(
    module.getOptionPeriod("admin_web_session_timeout", 30 * 60) * 1000,
    module.getOptionInteger("admin_web_max_sessions", 50, { min: 1 }),
  );
  const limiter = new LoginLimiter(
    module.getOptionInteger("admin_web_login_attempts", 5, { min: 1 }),
  );
  const maxAccounts = module.getOptionInteger("admin_web_max_accounts", 200, { min: 1 });
  const hosts = new Map<string, HostEntry>();

  const base = () => http.pathOf("admin_web") ?? "/admin";

  // --- hosts and their sessions ------------------------------------------------

  /** A host enables the module (addHost): follow its sessions from now on. */
  module.exports.register = (hostModule: Module) => {
    if (hostModule.hostType(hostModule.host) !== "local") return;
    const entry: HostEntry = { module: hostModule, sessions: new Set() };
    hosts.set(hostModule.host, entry);
    hostModule.hook("resource-bind", ({ session }) => {
      entry.sessions.add(session);
    });
    hostModule.hook("resource-unbind", ({ session }) => {
      entry.sessions.delete(session);
    });
    // Sessions bound before the module loaded (a reload): found through the accounts.
    hostModule.onReady(async () => {
      for await (const user of hostModule.users.users()) {
        for (const s of hostModule.resources(user)) entry.sessions.add(s);
      }
    });
  };

  /** The live entry of a host (not one whose module instance went). */
  function host(name: string): HostEntry | undefined {
    const entry = hosts.get(name);
    if (entry && !entry.module.loaded) hosts.delete(name);
    return entry?.module.loaded ? entry : undefined;
  }

  function liveSessions(entry: HostEntry): Session[] {
    const out: Session[] = [];
    for (const s of entry.sessions) {
      if (s.destroyed || !s.full_jid) entry.sessions.delete(s);
      else out.push(s);
    }
    return out.sort((a, b) => a.full_jid! < b.full_jid! ? -1 : 1);
  }

  /** The hosts a bare JID administers: every one whose `admins` (global or its own) list it. */
  function adminHosts(jid: string): string[] {
    const out: string[] = [];
    for (const [name] of hosts) {
      const entry = host(name);
      if (!entry) continue;
      const admins = [...entry.module.getOptionInheritedSet("admins")].map(normalJid);
      if (admins.includes(jid)) out.push(name);
    }
    return out;
  }

  // --- metrics over time -----------------------------------------------------------

  /** Open connections and stanzas received so far, from the server's metrics. */
  async function counts(): Promise<{ connections: number; stanzas: number }> {
    const text = await module.collectMetrics();
    return {
      connections: sumMetric(text, "cadence_connections{"),
      stanzas: sumMetric(text, 'cadence_stanzas_total{direction="in"'),
    };
  }

  let lastStanzas: { t: number; n: number } | undefined;
  async function sample(): Promise<void> {
    const { connections, stanzas } = await counts();
    const t = Date.now();
    const rate = lastStanzas && t > lastStanzas.t
      ? Math.max(0, (stanzas - lastStanzas.n) / ((t - lastStanzas.t) / 1000))
      : 0;
    lastStanzas = { t, n: stanzas };
    let count = 0;
    for (const [name] of hosts) {
      const entry = host(name);
      if (entry) count += liveSessions(entry).length;
    }
    ring.push({ t, sessions: count, connections, rss: Deno.memoryUsage().rss, stanzas: rate });
  }
  module.onReady(() => sample().catch(module.logError));
  module.addTimer(interval, async () => {
    await sample().catch(module.logError);
    return interval;
  });

  // --- requests -----------------------------------------------------------------------

  function current(request: Request): AdminSession | undefined {
    const s = sessions.get(readCookie(request, COOKIE));
    if (s && s.hosts.length === 0) return undefined;
    return s;
  }

  function frameFor(s: AdminSession, title: string, refresh?: number): Frame {
    const flash = s.flash;
    s.flash = undefined;
    return { base: base(), title, admin: s, flash, refresh };
  }

  async function get(request: Request, info: RequestInfo): Promise<Response> {
    const s = current(request);
    const path = info.path.replace(/\/+$/, "") || "/";
    if (!s) return path === "/" ? page(loginPage(base())) : redirect(`${base()}/`);
    if (path === "/") return page(await overview(s));
    const m = /^\/host\/([^/]+)$/.exec(path);
    const name = m ? safeDecode(m[1]) : undefined;
    if (!name || !s.hosts.includes(name) || !host(name)) {
      return page(loginPage(base(), "No such page."), 404);
    }
    const query = new URL(request.url).searchParams.get("q") ?? "";
    return page(await hostView(s, host(name)!, query));
  }

  async function overview(s: AdminSession) {
    const list = [];
    for (const name of s.hosts) {
      const entry = host(name);
      if (!entry) continue;
      let accounts = 0;
      for await (const _ of entry.module.users.users()) accounts++;
      list.push({ host: name, accounts, sessions: liveSessions(entry).length });
    }
    const mem = Deno.memoryUsage();
    return overviewPage(frameFor(s, "Overview", Math.max(interval, 10)), {
      version: CADENCE_VERSION,
      uptimeSeconds: (Date.now() - module.startTime) / 1000,
      memory: mem,
      connections: (await counts()).connections,
      hosts: list,
      charts: [
        chart("Client sessions", ring.series("sessions"), String),
        chart("Connections", ring.series("connections"), String),
        chart("Memory (RSS)", ring.series("rss"), mib),
        chart("Stanzas received per second", ring.series("stanzas"), (v) => v.toFixed(1)),
      ],
    });
  }

  async function hostView(s: AdminSession, entry: HostEntry, query: string) {
    const accounts: string[] = [];
    let truncated = false;
    const q = query.toLowerCase();
    for await (const user of entry.module.users.users()) {
      if (q && !user.includes(q)) continue;
      if (accounts.length >= maxAccounts) {
        truncated = true;
        break;
      }
      accounts.push(user);
    }
    accounts.sort();
    const rows: SessionRow[] = liveSessions(entry).map((session) => ({
      jid: session.full_jid!,
      ip: session.ip,
      client: session.presence?.getChildAttr("c", CAPS_NS, "node") ?? session.resource ?? "",
      secure: session.secure,
    }));
    return hostPage(frameFor(s, entry.module.host), {
      host: entry.module.host,
      accounts,
      truncated,
      query,
      sessions: rows,
    });
  }

  async function form(request: Request): Promise<URLSearchParams | undefined> {
    try {
      return new URLSearchParams(await readText(request, MAX_FORM));
    } catch (e) {
      if (e instanceof BodyTooLarge || e instanceof TypeError) return undefined;
      throw e;
    }
  }

  async function login(request: Request, info: RequestInfo): Promise<Response> {
    if (!originAllowed(request, info.baseUrl)) return refusal(403, "Forbidden: foreign origin");
    if (limiter.limited(info.ip)) {
      return page(loginPage(base(), "Too many failed logins: try again in a minute."), 429);
    }
    const f = await form(request);
    if (!f) return refusal(400, "Bad Request");
    const jid = normalJid(f.get("username") ?? "");
    const password = f.get("password") ?? "";
    const refuse = (why: string, status = 403) => {
      limiter.failed(info.ip);
      log.info("admin login refused for {jid} from {ip}: {why}", { jid, ip: info.ip, why });
      return page(loginPage(base(), why), status);
    };
    const parts = jid ? split(jid) : undefined;
    const entry = parts?.node ? host(parts.host) : undefined;
    if (!parts?.node || !entry) return refuse("Wrong address or password.");
    const managed = adminHosts(jid!);
    if (managed.length === 0) return refuse("Not an administrator.");
    if (!password || !await entry.module.users.testPassword(parts.node, password)) {
      return refuse("Wrong address or password.");
    }
    const s = sessions.create(jid!, managed);
    log.info("{jid} logged in to the web admin from {ip}", { jid, ip: info.ip });
    return redirect(`${base()}/`, { "set-cookie": sessionCookie(s.token, base(), info.secure) });
  }

  /** A POST from a logged-in admin, with the form's CSRF token and the Origin checked. */
  async function guarded(
    request: Request,
    info: RequestInfo,
  ): Promise<Response | { s: AdminSession; f: URLSearchParams }> {
    if (!originAllowed(request, info.baseUrl)) return refusal(403, "Forbidden: foreign origin");
    const s = current(request);
    const f = await form(request);
    if (!f) return refusal(400, "Bad Request");
    if (!s) return refusal(403, "Forbidden: not logged in");
    if (!sameSecret(f.get("csrf") ?? "", s.csrf)) return refusal(403, "Forbidden: bad CSRF token");
    return { s, f };
  }

  async function logout(request: Request, info: RequestInfo): Promise<Response> {
    const g = await guarded(request, info);
    if (g instanceof Response) return g;
    sessions.delete(g.s.token);
    return redirect(`${base()}/`, { "set-cookie": sessionCookie("", base(), info.secure) });
  }

  async function action(request: Request, info: RequestInfo): Promise<Response> {
    const g = await guarded(request, info);
    if (g instanceof Response) return g;
    const { s, f } = g;
    const m = /^\/host\/([^/]+)\/(kick|create|delete|password)$/.exec(info.path);
    const name = m ? safeDecode(m[1]) : undefined;
    const entry = name && s.hosts.includes(name) ? host(name) : undefined;
    if (!m || !entry) return refusal(404, "Not Found");
    const back = redirect(`${base()}/host/${encodeURIComponent(name!)}`);
    const users = entry.module.users;
    const what = m[2];
    const said = (text: string) => {
      s.flash = text;
      log.info("web admin {admin}: {text}", { admin: s.jid, text });
      return back;
    };
    if (what === "kick") {
      const jid = f.get("jid") ?? "";
      const session = entry.module.fullSession(jid);
      if (!session || session.host !== name) return said(`${jid} is not online.`);
      session.close({ condition: "policy-violation", text: "Kicked by an administrator" });
      return said(`Kicked ${jid}.`);
    }
    const username = prepNode((f.get("username") ?? "").trim());
    if (!username) return said("Invalid username.");
    const jid = `${username}@${name}`;
    try {
      if (what === "create") {
        const password = f.get("password") ?? "";
        if (!password) return said("A password is needed.");
        await users.createUser(username, password);
        return said(`Created ${jid}.`);
      }
      if (what === "password") {
        const password = f.get("password") ?? "";
        if (!password) return said("A password is needed.");
        await users.setPassword(username, password);
        return said(`Changed the password of ${jid}.`);
      }
      await users.deleteUser(username);
      for (const session of [...entry.module.resources(username)]) {
        session.close({ condition: "not-authorized", text: "Account deleted" });
      }
      sessions.deleteJid(jid);
      return said(`Deleted ${jid}.`);
    } catch (e) {
      if (e instanceof UserError) return said(e.message);
      throw e;
    }
  }

  module.provides("http", {
    name: "admin_web",
    default_path: "/admin",
    max_content_size: MAX_FORM,
    route: {
      "GET /": get,
      "GET /*": get,
      "POST /login": login,
      "POST /logout": logout,
      "POST /*": action,
    },
  });
}

/** A host enables the module: its sessions and accounts are managed from now on. */
export function addHost(hostModule: Module) {
  (hostModule.exports.register as (m: Module) => void)(hostModule);
}

/** "User@Host/x" as the bare JID accounts and `admins` compare by, or undefined. */
function normalJid(text: string): string | undefined {
  const parts = split(text.trim());
  if (!parts) return undefined;
  const domain = prepDomain(parts.host);
  const node = parts.node === undefined ? undefined : prepNode(parts.node);
  if (!domain || (parts.node !== undefined && !node)) return undefined;
  return node ? `${node}@${domain}` : domain;
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** The sum of the samples of an OpenMetrics family whose lines start so. */
function sumMetric(text: string, prefix: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(prefix)) continue;
    const v = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}
