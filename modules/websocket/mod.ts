/**
 * XMPP over WebSocket (RFC 7395, Prosody's mod_websocket) at
 * `/xmpp-websocket` on the HTTP server: a client (Converse.js, Movim, any
 * browser client) opens a WebSocket with the `xmpp` subprotocol and gets a
 * c2s session like a TCP client's — SASL, bind, stream management and
 * everything else — with RFC 7395's framing (`framing.ts`) over a socket
 * made of the WebSocket (`socket.ts`).
 *
 * The session counts as encrypted when the WebSocket came over HTTPS (to
 * us, or to a trusted proxy saying so), or with `consider_websocket_secure`
 * (TLS ended by a proxy that does not say so). STARTTLS is never offered.
 * Frames larger than `websocket_max_frame_size` (the stanza limit and a
 * little more) close the WebSocket with 1009; binary frames with 1003.
 * Idle clients are pinged (Deno answers pongs), and dropped if they miss one.
 * @module
 */
import type { Module } from "../../core/moduleapi.ts";
import type { Socket } from "node:net";
import type { RequestInfo } from "../../core/http/server.ts";
import { WebSocketSocket } from "./socket.ts";

export const meta = { scope: "global" };

type Accept = (
  socket: Socket,
  transport: { secure?: boolean; noStartTls?: boolean; name?: string },
) => void;

export default async function websocket(module: Module) {
  await module.depends("http");
  const c2s = await module.depends<{ accept: Accept }>("c2s");
  const considerSecure = module.getOptionBoolean("consider_websocket_secure", false)!;
  const stanzaLimit = module.getOptionInteger("c2s_stanza_size_limit", 256 * 1024, { min: 1 });
  const maxFrame = module.getOptionInteger("websocket_max_frame_size", stanzaLimit + 4096, {
    min: 1024,
  });
  // Seconds without traffic before a ping; a client that does not answer it is dropped.
  const idleTimeout = module.getOptionPeriod("websocket_ping_interval", 60);

  function upgrade(request: Request, info: RequestInfo): Response {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response(
        "This is an XMPP WebSocket endpoint (RFC 7395): point a WebSocket client here.\n",
        { status: 200, headers: { "content-type": "text/plain" } },
      );
    }
    const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",")
      .map((p) => p.trim());
    if (!offered.includes("xmpp")) {
      return new Response("The 'xmpp' WebSocket subprotocol is required\n", { status: 501 });
    }
    const { socket: ws, response } = Deno.upgradeWebSocket(request, {
      protocol: "xmpp",
      idleTimeout,
    });
    ws.onopen = () => {
      const socket = new WebSocketSocket(ws, info.ip, { maxFrame, log: module.log });
      c2s.accept(socket as unknown as Socket, {
        secure: info.secure || considerSecure,
        noStartTls: true,
        name: "websocket",
      });
    };
    return response;
  }

  module.provides("http", {
    name: "websocket",
    default_path: "/xmpp-websocket",
    cors: { enabled: true },
    route: { "GET /": upgrade },
  });
}
