/**
 * The web admin's pages, rendered on the server from plain data: the login
 * form, the overview (hosts, counts, uptime, memory, charts) and a host's
 * page (accounts with their forms, online sessions with a kick button).
 * Every value goes through `html`, so names and resources are escaped.
 * @module
 */
import { type Html, html } from "./html.ts";

export interface Frame {
  /** Where the admin is served ("/admin"). */
  base: string;
  title: string;
  /** The logged-in admin, with the CSRF token forms carry. */
  admin?: { jid: string; csrf: string; hosts: string[] };
  /** A one-time notice (an action's outcome). */
  flash?: string;
  /** Seconds between reloads of the page, if it refreshes itself. */
  refresh?: number;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}
header{background:#24292f;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header a{color:#fff}header form{margin-left:auto}
main{padding:16px;max-width:1100px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left}
th{background:#f6f8fa}.flash{background:#ddf4ff;border:1px solid #54aeff;padding:8px;margin:8px 0}
.error{background:#ffebe9;border-color:#ff8182}.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0}form.inline{display:inline}input{margin:2px}
`;

/** The page around a body: head, navigation, the logout button, a notice. */
export function frame(f: Frame, body: Html): Html {
  const base = f.base;
  return html`
    <html lang="en">
      <head><meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    ${f.refresh ? html`<meta http-equiv="refresh" content="${f.refresh}">` : ""}
    <title>${f.title} – Cadence admin</title><style>${STYLE}</style></head>
      <body>
        <header><b>Cadence admin</b>
    ${f.admin
      ? html`<a href="${base}/">Overview</a>
${
        f.admin.hosts.map((h) =>
          html`
            <a href="${base}/host/${encodeURIComponent(h)}">${h}</a>
          `
        )
      }
<form method="post" action="${base}/logout"><span id="whoami">${f.admin.jid}</span>
${csrfField(f.admin.csrf)}<button type="submit" id="logout">Log out</button></form>`
      : ""}
        </header>
        <main><h1>${f.title}</h1>
    ${f.flash ? html`<p class="flash" id="flash">${f.flash}</p>` : ""}
    ${body}</main>
      </body>
    </html>
  `;
}

function csrfField(token: string): Html {
  return html`<input type="hidden" name="csrf" value="${token}">`;
}

/** The login form, with why the last attempt failed. */
export function loginPage(base: string, error?: string): Html {
  return frame(
    { base, title: "Log in" },
    html`
      ${error ? html`<p class="flash error" id="error">${error}</p>` : ""}
      <form method="post" action="${base}/login" id="login">
        <p><label>Address (user@host)<br><input name="username" id="username" autocomplete="username" required></label></p>
        <p><label>Password<br><input name="password" id="password" type="password" autocomplete="current-password" required></label></p>
        <p><button type="submit">Log in</button></p>
      </form>
    `,
  );
}

export interface HostSummary {
  host: string;
  accounts: number;
  sessions: number;
}

export interface Overview {
  version: string;
  uptimeSeconds: number;
  memory: { rss: number; heapUsed: number; heapTotal: number };
  connections: number;
  hosts: HostSummary[];
  charts: Html[];
}

/** Seconds as "2d 3h 4m 5s". */
export function duration(s: number): string {
  s = Math.floor(s);
  const parts = [[86400, "d"], [3600, "h"], [60, "m"]] as const;
  let out = "";
  for (const [n, unit] of parts) {
    if (s >= n) {
      out += `${Math.floor(s / n)}${unit} `;
      s %= n;
    }
  }
  return out + `${s}s`;
}

const mb = (n: number) => `${(n / (1 << 20)).toFixed(1)} MiB`;

export function overviewPage(f: Frame, o: Overview): Html {
  return frame(
    f,
    html`
      <table id="server">
        <tbody>
          <tr>
            <th>Version</th>
            <td>${o.version}</td>
          </tr>
          <tr>
            <th>Uptime</th>
            <td id="uptime">${duration(o.uptimeSeconds)}</td>
          </tr>
          <tr>
            <th>Memory</th>
            <td id="memory">${mb(o.memory.rss)} resident, heap ${mb(o.memory.heapUsed)} of ${mb(
              o.memory.heapTotal,
            )}</td>
          </tr>
          <tr>
            <th>Connections</th>
            <td id="connections">${o.connections}</td>
          </tr>
        </tbody>
      </table>
      <h2>Hosts</h2>
      <table id="hosts">
        <thead>
          <tr>
            <th>Host</th>
            <th>Accounts</th>
            <th>Online sessions</th>
          </tr>
        </thead>
        <tbody>
      ${o.hosts.map((h) =>
        html`
          <tr>
            <td><a href="${f.base}/host/${encodeURIComponent(h.host)}">${h.host}</a></td>
            <td>${h.accounts}</td>
            <td>${h.sessions}</td>
          </tr>
        `
      )}
        </tbody>
      </table>
      <h2>Over time</h2>
      <div class="charts">${o.charts}</div>
    `,
  );
}

export interface SessionRow {
  jid: string;
  ip: string;
  client: string;
  secure: boolean;
  /** Since when (ms since the epoch), if known. */
  since?: number;
}

export interface HostPage {
  host: string;
  accounts: string[];
  /** More accounts matched than are listed. */
  truncated: boolean;
  query: string;
  sessions: SessionRow[];
}

export function hostPage(f: Frame, p: HostPage): Html {
  const action = (what: string) => `${f.base}/host/${encodeURIComponent(p.host)}/${what}`;
  const csrf = csrfField(f.admin!.csrf);
  return frame(
    f,
    html`
      <h2>Online sessions (${p.sessions.length})</h2>
      <table id="sessions">
        <thead>
          <tr>
            <th>Full JID</th>
            <th>IP</th>
            <th>Client</th>
            <th>TLS</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
      ${p.sessions.map((s) =>
        html`
          <tr class="session">
            <td class="jid">${s.jid}</td>
            <td class="ip">${s.ip}</td>
            <td class="client">${s.client}</td>
            <td class="tls">${s.secure ? "yes" : "no"}</td>
            <td>
              <form class="inline kick" method="post" action="${action("kick")}">${csrf}
          <input type="hidden" name="jid" value="${s
            .jid}"><button type="submit">Kick</button></form>
            </td>
          </tr>
        `
      )}
        </tbody>
      </table>
      <h2>Accounts</h2>
      <form method="get" action="${action("")}"><input name="q" value="${p
        .query}" placeholder="filter">
      <button type="submit">Filter</button></form>
      <table id="accounts">
        <thead>
          <tr>
            <th>User</th>
            <th>Change password</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
      ${p.accounts.map((u) =>
        html`
          <tr class="account">
            <td class="user">${u}@${p.host}</td>
            <td>
              <form class="inline password" method="post" action="${action("password")}">${csrf}
          <input type="hidden" name="username" value="${u}"><input type="password" name="password" required autocomplete="new-password">
          <button type="submit">Set</button></form>
            </td>
            <td>
              <form class="inline delete" method="post" action="${action("delete")}">${csrf}
          <input type="hidden" name="username" value="${u}"><button type="submit">Delete</button></form>
            </td>
          </tr>
        `
      )}
        </tbody>
      </table>
      ${p.truncated ? html`<p>More accounts match: narrow the filter.</p>` : ""}
      <h2>New account</h2>
      <form method="post" action="${action("create")}" id="create">${csrf}
      <input name="username" placeholder="username" required> @${p.host}
      <input name="password" type="password" placeholder="password" required autocomplete="new-password">
      <button type="submit">Create</button></form>
    `,
  );
}
