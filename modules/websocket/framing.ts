/**
 * RFC 7395 framing: an XMPP stream over WebSocket has no stream header and
 * no closing tag; `<open/>` and `<close/>` in the framing namespace stand
 * for them, and every message is one element that declares its namespaces.
 * These functions turn the client's frames into the byte stream the c2s
 * parser reads, and what c2s writes into frames.
 *
 * @example
 * ```ts
 * parser.feed(fromClient("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='a.test' version='1.0'/>"));
 * ws.send(toClient("<message to='x@a.test'><body>hi</body></message>"));
 * // → <message xmlns="jabber:client" to='x@a.test'>…
 * ```
 * @module
 */
import { escapeAttr } from "../../core/xml/stanza.ts";

export const FRAMING_NS = "urn:ietf:params:xml:ns:xmpp-framing";
const STREAMS = "http://etherx.jabber.org/streams";
const HEADER_START = "<stream:stream";
const CLOSE = "</stream:stream>";

/** Attributes of one start tag (`<name a='1' b="2" ...>`), names as written. */
export function startTagAttributes(tag: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  const re = /([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  const start = tag.indexOf(" ");
  if (start < 0) return attrs;
  for (const m of tag.slice(start).matchAll(re)) attrs[m[1]] = unescape(m[2] ?? m[3]);
  return attrs;
}

function unescape(s: string): string {
  return s.replace(
    /&(lt|gt|amp|quot|apos);/g,
    (_, e) => ({ lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" })[e as string]!,
  );
}

/** Where a start tag ends (its `>`), quotes respected; -1 if it does not end here. */
export function tagEnd(text: string, from = 0): number {
  let quote = "";
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") quote = c;
    else if (c === ">") return i;
  }
  return -1;
}

/**
 * A frame from the client, as stream text: `<open/>` becomes a stream
 * header, `<close/>` the closing tag; anything else goes as it is.
 */
export function fromClient(frame: string): string {
  const t = frame.trim();
  if (/^<open[\s/>]/.test(t) && t.includes(FRAMING_NS)) {
    const end = tagEnd(t);
    const a = startTagAttributes(t.slice(0, end < 0 ? t.length : end));
    let header = `<stream:stream xmlns='jabber:client' xmlns:stream='${STREAMS}'`;
    for (const name of ["to", "from", "version", "xml:lang", "id"]) {
      if (a[name] !== undefined) header += ` ${name}='${escapeAttr(a[name])}'`;
    }
    return header + ">";
  }
  if (/^<close[\s/>]/.test(t) && t.includes(FRAMING_NS)) return CLOSE;
  return frame;
}

/** Whether a client frame is the framing's `<close/>`. */
export function isClose(frame: string): boolean {
  const t = frame.trim();
  return /^<close[\s/>]/.test(t) && t.includes(FRAMING_NS);
}

/**
 * What c2s wrote (one write: a header, an element, the closing tag, or a
 * header and an error and the closing tag at once), as the frames to send.
 */
export function toClient(text: string): string[] {
  const frames: string[] = [];
  let rest = text;
  if (rest.startsWith("<?xml")) rest = rest.slice(rest.indexOf("?>") + 2);
  if (rest.startsWith(HEADER_START)) {
    const end = tagEnd(rest);
    const a = startTagAttributes(rest.slice(0, end));
    let open = `<open xmlns="${FRAMING_NS}"`;
    for (const name of ["from", "to", "id", "version", "xml:lang"]) {
      if (a[name] !== undefined) open += ` ${name}="${escapeAttr(a[name])}"`;
    }
    frames.push(open + "/>");
    rest = rest.slice(end + 1);
  }
  let closes = false;
  if (rest.endsWith(CLOSE)) {
    closes = true;
    rest = rest.slice(0, -CLOSE.length);
  }
  if (rest.trim() !== "") frames.push(declared(rest));
  if (closes) frames.push(`<close xmlns="${FRAMING_NS}"/>`);
  return frames;
}

/** One element with the namespaces its frame must declare (RFC 7395 §3.3.3). */
function declared(element: string): string {
  const m = /^<([\w:.-]+)/.exec(element);
  if (!m) return element;
  const end = tagEnd(element);
  const startTag = element.slice(0, end < 0 ? element.length : end);
  const name = m[1];
  let add = "";
  if (name.startsWith("stream:") && !/\sxmlns:stream\s*=/.test(startTag)) {
    add = ` xmlns:stream="${STREAMS}"`;
  } else if (!name.includes(":") && !/\sxmlns\s*=/.test(startTag)) {
    add = ` xmlns="jabber:client"`;
  }
  return add ? `<${name}${add}${element.slice(name.length + 1)}` : element;
}
