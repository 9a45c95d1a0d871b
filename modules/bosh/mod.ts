/**
 * XMPP over BOSH (XEP-0124, XEP-0206; Prosody's mod_bosh) at `/http-bind`
 * on the HTTP server: a client that can only make HTTP requests (an old
 * browser, a restrictive proxy) gets a c2s session like a TCP client's —
 * SASL, bind and everything else — carried in `<body/>` wrappers
 * (`body.ts`), with the session's request ids and held requests kept by
 * `session.ts` and the stream behind it made into a socket (`socket.ts`).
 *
 * Options, as Prosody names them: `bosh_max_inactivity` (60 s without a
 * request before the session ends), `bosh_max_wait` (120 s a request may
 * be held), `bosh_max_requests` (2 at once, so a client may hold 1),
 * `bosh_max_polling` (5 s between a polling client's empty requests),
 * `consider_bosh_secure` (TLS ended by a proxy that does not say so).
 * Cadence's own: `bosh_max_pause` (120 s a client may pause for, §10).
 * The session counts as encrypted when it came over HTTPS (to us, or to a
 * trusted proxy saying so). Any origin may use it (CORS), as in Prosody.
 * Not done: the `key`/`newkey` sequence (§15) and `ack` (§9), both
 * optional; the sid is long and random instead.
 * @module
 */
import type { Module } from "../../core/moduleapi.ts";
import type { Socket } from "node:net";
import { BodyTooLarge, readText, type RequestInfo } from "../../core/http/server.ts";
import { BadBody, readBody, terminateBody } from "./body.ts";
import { BoshSession } from "./session.ts";

export const meta = { scope: "global" };

type Accept = (socket: Socket, transport: { secure?: boolean; noStartTls?: boolean }) => void;

const XML = { "content-type": "text/xml; charset=utf-8" };

export default async function bosh(module: Module) {
  await module.depends("http");
  const c2s = await module.depends<{ accept: Accept }>("c2s");
  const log = module.log;
  const maxInactivity = module.getOptionPeriod("bosh_max_inactivity", 60);
  const maxWait = module.getOptionPeriod("bosh_max_wait", 120);
  const maxRequests = module.getOptionInteger("bosh_max_requests", 2, { min: 1 });
  const polling = module.getOptionPeriod("bosh_max_polling", 5);
  const maxPause = module.getOptionPeriod("bosh_max_pause", 120);
  const considerSecure = module.getOptionBoolean("consider_bosh_secure", false)!;
  const stanzaLimit = module.getOptionInteger("c2s_stanza_size_limit", 256 * 1024, { min: 1 });
  // A request carries a stanza or a few: the stanza limit and room for the wrapper.
  const maxRequestSize = stanzaLimit + 16 * 1024;
  const sessions = new Map<string, BoshSession>();

  const answer = (text: string, status = 200) => new Response(text, { status, headers: XML });

  async function post(request: Request, info: RequestInfo): Promise<Response> {
    let req;
    try {
      req = readBody(await readText(request, maxRequestSize));
    } catch (e) {
      if (e instanceof BodyTooLarge) return answer(terminateBody("policy-violation"), 413);
      if (e instanceof BadBody || e instanceof TypeError) {
        log.debug("BOSH request from {ip} refused: {why}", { ip: info.ip, why: e.message });
        return answer(terminateBody("bad-request"), 400);
      }
      throw e;
    }
    const rid = Number(req.attrs.rid);
    if (!/^\d{1,16}$/.test(req.attrs.rid ?? "") || !Number.isSafeInteger(rid)) {
      return answer(terminateBody("bad-request"), 400);
    }
    const sid = req.attrs.sid;
    if (sid === undefined) return answer(await create(rid, req.attrs, req.payload, info));
    const session = sessions.get(sid);
    // Terminate conditions come with 200 OK (XEP-0124 §17; 404 was its legacy way), as Prosody.
    if (!session) return answer(terminateBody("item-not-found"));
    return answer(await session.request(rid, req.attrs, req.payload));
  }

  /** A session creation request (§7.1): its terms, then the stream's first answer. */
  function create(
    rid: number,
    attrs: Record<string, string | undefined>,
    payload: string,
    info: RequestInfo,
  ): Promise<string> | string {
    const to = attrs.to;
    if (!to || module.hostType(to) !== "local") {
      return terminateBody("host-unknown");
    }
    const wait = Number(attrs.wait);
    if (!Number.isFinite(wait) || wait < 0) return terminateBody("bad-request");
    const hold = Math.min(Math.max(Number(attrs.hold ?? 1) || 0, 0), maxRequests - 1);
    const sid = crypto.randomUUID();
    const session = new BoshSession(
      sid,
      rid,
      {
        wait: Math.min(Math.floor(wait), maxWait),
        hold,
        requests: hold + 1,
        inactivity: maxInactivity,
        polling,
        maxpause: maxPause,
        secure: info.secure || considerSecure,
        to,
        lang: attrs["xml:lang"],
      },
      info.ip,
      log,
    );
    sessions.set(sid, session);
    session.onGone = () => sessions.delete(sid);
    c2s.accept(session.socket as unknown as Socket, {
      secure: info.secure || considerSecure,
      noStartTls: true,
    });
    session.openStream();
    log.debug("BOSH session {sid} for {ip} to {to}", { sid, ip: info.ip, to });
    return session.request(rid, {}, payload);
  }

  module.provides("http", {
    name: "bosh",
    default_path: "/http-bind",
    cors: { enabled: true, methods: ["GET", "POST", "OPTIONS"] },
    max_content_size: maxRequestSize,
    route: {
      "POST /": post,
      "GET /": () =>
        new Response(
          "This is an XMPP BOSH endpoint (XEP-0206): point a BOSH client here.\n",
          { headers: { "content-type": "text/plain" } },
        ),
    },
  });
}
