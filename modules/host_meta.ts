/**
 * XEP-0156 discovery over HTTP: `/.well-known/host-meta` (XRD) and
 * `/.well-known/host-meta.json` (JRD) tell web clients where this server's
 * WebSocket (and BOSH, when loaded) endpoints are, so a user types only
 * their JID. URLs follow `http_external_url` behind a proxy, else the
 * address the client used (`wss:` when it came over HTTPS). Any origin may
 * read them (CORS), as the XEP asks.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { RequestInfo } from "../core/http/server.ts";
import type { HttpProvider } from "./http.ts";
import { escapeAttr } from "../core/xml/stanza.ts";

export const meta = { scope: "global" };

const WEBSOCKET_REL = "urn:xmpp:alt-connections:websocket";
const BOSH_REL = "urn:xmpp:alt-connections:xbosh";

export default async function hostMeta(module: Module) {
  const http = await module.depends<{ pathOf(name: string): string | undefined }>("http");

  /** The endpoints to announce, for a request that came to `baseUrl`. */
  function links(info: RequestInfo): Array<{ rel: string; href: string }> {
    const out: Array<{ rel: string; href: string }> = [];
    const ws = http.pathOf("websocket");
    if (ws) out.push({ rel: WEBSOCKET_REL, href: info.baseUrl.replace(/^http/, "ws") + ws });
    const bosh = http.pathOf("bosh");
    if (bosh) out.push({ rel: BOSH_REL, href: info.baseUrl + bosh });
    return out;
  }

  const provider: HttpProvider = {
    name: "host_meta",
    default_path: "/.well-known",
    cors: { enabled: true, methods: ["GET", "OPTIONS"] },
    route: {
      "GET /host-meta": (_req, info) =>
        new Response(
          "<?xml version='1.0' encoding='utf-8'?>\n" +
            "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n" +
            links(info).map((l) =>
              `  <Link rel='${escapeAttr(l.rel)}' href='${escapeAttr(l.href)}'/>\n`
            ).join("") + "</XRD>\n",
          { headers: { "content-type": "application/xrd+xml" } },
        ),
      "GET /host-meta.json": (_req, info) => Response.json({ links: links(info) }),
    },
  };
  module.provides("http", provider);
}
