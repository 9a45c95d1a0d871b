/**
 * The `<body/>` wrapper of BOSH (XEP-0124) and XMPP over BOSH (XEP-0206):
 * reading a client's request, and writing the connection manager's
 * answers. The stanzas inside are passed through as text: the c2s parser
 * reads them as it reads a TCP client's.
 *
 * @example
 * ```ts
 * const req = readBody("<body rid='7' sid='abc' xmlns='http://jabber.org/protocol/httpbind'/>");
 * // req.attrs.rid === "7", req.payload === ""
 * terminateBody("item-not-found"); // → <body xmlns=… type='terminate' condition='item-not-found'/>
 * ```
 * @module
 */
import { parseXml } from "../../core/xml/parser.ts";
import { escapeAttr } from "../../core/xml/stanza.ts";
import { tagEnd } from "../websocket/framing.ts";

export const BOSH_NS = "http://jabber.org/protocol/httpbind";
export const XBOSH_NS = "urn:xmpp:xbosh";

/** A client's `<body/>`: its attributes and the stanzas inside, as written. */
export interface BoshRequest {
  attrs: Record<string, string | undefined>;
  payload: string;
}

/** Why a request cannot be read (answered with `bad-request`). */
export class BadBody extends Error {}

/** Reads a request; throws `BadBody` when it is not one well-formed `<body/>` of BOSH. */
export function readBody(text: string): BoshRequest {
  const xml = text.replace(/^\s*<\?xml[^>]*\?>/, "").trim();
  let body;
  try {
    body = parseXml(xml, BOSH_NS);
  } catch (e) {
    throw new BadBody(`not well-formed: ${(e as Error).message}`);
  }
  if (body.name !== "body" || (body.attrs.xmlns ?? BOSH_NS) !== BOSH_NS) {
    throw new BadBody("the root element is not BOSH's <body/>");
  }
  // One element, well-formed: what lies between its start and end tags is its content.
  const end = tagEnd(xml);
  const payload = xml[end - 1] === "/" ? "" : xml.slice(end + 1, xml.lastIndexOf("</"));
  return { attrs: body.attrs, payload };
}

/** A `<body/>` with these attributes around this content. */
export function body(attrs: Record<string, string | undefined>, payload = ""): string {
  let s = `<body xmlns='${BOSH_NS}'`;
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined) s += ` ${k}='${escapeAttr(v)}'`;
  }
  return payload === "" ? s + "/>" : `${s}>${payload}</body>`;
}

/** The answer that ends a session (XEP-0124 §17 conditions). */
export function terminateBody(condition?: string, payload = ""): string {
  return body({ type: "terminate", condition }, payload);
}
