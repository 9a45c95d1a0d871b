/**
 * The XML stream parser (RFC 6120 §4, §11): a streaming, namespace-aware
 * tokenizer for the subset of XML that XMPP allows, written so that every
 * buffer it keeps has a cap that trips as the bytes arrive.
 *
 * It reports the stream header, each complete top-level element as a
 * {@link Stanza} — only once its end tag has arrived and matched, so a
 * stanza broken off by bad XML or by `</stream:stream>` is never dispatched —
 * and the stream's end. Errors, each reported once (the parser ignores
 * everything after):
 *
 * - `not-well-formed`: broken XML (mismatched tags, bad names, unquoted or
 *   duplicate attributes, a bare `&`, characters XML forbids, text between
 *   stanzas);
 * - `restricted-xml`: a DTD, comment, processing instruction or entity other
 *   than the five predefined ones (RFC 6120 §11.1);
 * - `unsupported-encoding`: invalid UTF-8, or an XML declaration naming
 *   another encoding;
 * - `invalid-namespace` / `bad-namespace-prefix`: a wrong stream header or
 *   an undeclared prefix;
 * - `policy-violation`: a limit exceeded — stanza size, stream header size,
 *   nesting depth, name length, attribute count or length, whitespace
 *   between stanzas.
 *
 * Sizes are counted in characters (UTF-16 code units): bytes for ASCII,
 * fewer than bytes otherwise. Whitespace between stanzas is never buffered.
 *
 * Attributes: `xml:lang` keeps that name; other prefixed attributes keep
 * their qualified name, with the prefix's `xmlns:p` declaration kept on the
 * element so that it serialises back to the same XML. An element's own
 * prefix is dropped; its namespace goes to `attrs.xmlns` unless it is the
 * stream's default namespace.
 *
 * @example
 * ```ts
 * const parser = new StreamParser({
 *   streamOpen: (attrs) => console.log("stream to", attrs.to),
 *   stanza: (el) => console.log(el.toString()),
 *   streamClose: () => console.log("closed"),
 *   error: (condition, text) => console.log(condition, text),
 * });
 * parser.feed(new TextEncoder().encode("<stream:stream xmlns='jabber:client' ..."));
 * ```
 * @module
 */
import { Stanza } from "./stanza.ts";

export type StreamErrorCondition =
  | "not-well-formed"
  | "restricted-xml"
  | "policy-violation"
  | "invalid-namespace"
  | "bad-namespace-prefix"
  | "unsupported-encoding";

export interface StreamHandlers {
  /** The stream header arrived; its attributes (without namespace declarations). */
  streamOpen(attrs: Record<string, string>): void;
  /** A complete top-level element. */
  stanza(el: Stanza): void;
  /** `</stream:stream>` arrived. */
  streamClose(): void;
  /** The input broke a rule; called once, and the parser ignores anything after. */
  error(condition: StreamErrorCondition, text: string): void;
}

export interface ParserOptions {
  /** Largest stanza, from its `<` to its end tag; default 256 KiB. */
  maxStanzaSize: number;
  /** Deepest nesting of elements within a stanza; default 64. */
  maxDepth: number;
  /** Largest XML declaration plus stream header; default 8 KiB. */
  maxHeaderSize: number;
  /** Longest element or attribute name; default 1024. */
  maxNameLength: number;
  /** Most attributes (namespace declarations included) on one element; default 100. */
  maxAttributes: number;
  /** Longest attribute value; default 64 KiB. */
  maxAttributeLength: number;
  /**
   * Most whitespace between two stanzas in one burst of input (a second's
   * pause starts the count again, so keepalives never add up); default the
   * stanza size limit.
   */
  maxGap: number;
  /** The namespace stanzas must be in by default; default "jabber:client". */
  defaultNs: string;
}

export const STREAMS_NS = "http://etherx.jabber.org/streams";
const XML_NS = "http://www.w3.org/XML/1998/namespace";

class StreamError extends Error {
  constructor(readonly condition: StreamErrorCondition, message: string) {
    super(message);
  }
}

const LT = 60, GT = 62, SLASH = 47, BANG = 33, QUESTION = 63, QUOT = 34, APOS = 39;
/** A pause in the input this long ends a burst of whitespace (see `maxGap`). */
const GAP_PAUSE_MS = 1000;

// XML 1.0 forbids these characters anywhere, even as character references.
// deno-lint-ignore no-control-regex
const FORBIDDEN_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;
const WHITESPACE = /^[ \t\r\n]*$/;
const NAME_START = "A-Z_a-z\\u00c0-\\u00d6\\u00d8-\\u00f6\\u00f8-\\u02ff\\u0370-\\u037d" +
  "\\u037f-\\u1fff\\u200c\\u200d\\u2070-\\u218f\\u2c00-\\u2fef\\u3001-\\ud7ff" +
  "\\uf900-\\ufdcf\\ufdf0-\\ufffd\\ud800-\\udbff\\udc00-\\udfff";
const NAME_CHAR = NAME_START + "\\-.0-9\\u00b7\\u0300-\\u036f\\u203f-\\u2040";
/** A qualified name: an NCName, or two joined by one colon. */
const QNAME = new RegExp(`^[${NAME_START}][${NAME_CHAR}]*(?::[${NAME_START}][${NAME_CHAR}]*)?$`);
const ENTITY_NAME = new RegExp(`^[${NAME_START}:][${NAME_CHAR}:]*$`);

/** Namespace bindings in scope: prefix → URI ("" is the default namespace). */
type Scope = Record<string, string | undefined>;

function rootScope(): Scope {
  const scope = Object.create(null) as Scope;
  scope.xml = XML_NS;
  return scope;
}

/** An element open on the stack; the stream itself is the first one. */
interface Frame {
  qname: string;
  scope: Scope;
  /** The element's namespace. */
  uri: string;
  /** undefined for the stream element. */
  el: Stanza | undefined;
}

const enum Phase {
  /** Before the stream header (XML declaration and whitespace allowed). */
  Prolog,
  /** Inside the stream. */
  Open,
  /** After `</stream:stream>` or an error: input is ignored. */
  Done,
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 13;
}

function defaults(opts: Partial<ParserOptions>): ParserOptions {
  const maxStanzaSize = opts.maxStanzaSize ?? 256 * 1024;
  return {
    maxStanzaSize,
    maxDepth: opts.maxDepth ?? 64,
    maxHeaderSize: opts.maxHeaderSize ?? 8 * 1024,
    maxNameLength: opts.maxNameLength ?? 1024,
    maxAttributes: opts.maxAttributes ?? 100,
    maxAttributeLength: opts.maxAttributeLength ?? 64 * 1024,
    maxGap: opts.maxGap ?? maxStanzaSize,
    defaultNs: opts.defaultNs ?? "jabber:client",
  };
}

export class StreamParser {
  private opts: ParserOptions;
  private decoder = new TextDecoder("utf-8", { fatal: true });
  private phase = Phase.Prolog;
  /** Input not consumed yet: at most one unfinished token. */
  private buf = "";
  /** Where in `buf` the unfinished token was scanned up to (so a scan never repeats). */
  private scan = 0;
  /** The quote character a start-tag scan stopped inside, or 0. */
  private quote = 0;
  /** Characters consumed before `buf[0]` since the stream (re)started. */
  private offset = 0;
  /** Offset where the current stanza (or unfinished markup between stanzas) began. */
  private stanzaStart = 0;
  /** Whitespace seen since the last stanza (in this burst of input). */
  private gap = 0;
  private lastFeed = 0;
  private stack: Frame[] = [];
  /** Bumped by reset(): a loop working on the old stream stops. */
  private generation = 0;

  constructor(private handlers: StreamHandlers, opts: Partial<ParserOptions> = {}) {
    this.opts = defaults(opts);
  }

  /** Characters held for an unfinished token (never more than its limit). */
  get buffered(): number {
    return this.buf.length;
  }

  /**
   * Changes limits, e.g. the larger stanza size allowed after authentication
   * (`maxGap` follows `maxStanzaSize` unless given).
   */
  setOptions(opts: Partial<ParserOptions>): void {
    this.opts = defaults({ ...this.opts, maxGap: undefined, ...opts });
  }

  /**
   * Starts over for a new stream (after STARTTLS or SASL success); safe inside
   * a callback. Input already received after the element that caused the
   * reset is dropped: it belongs to the old stream (RFC 6120 §5.4.3.3, §6.4.6).
   */
  reset(): void {
    this.generation++;
    this.decoder = new TextDecoder("utf-8", { fatal: true });
    this.phase = Phase.Prolog;
    this.buf = "";
    this.scan = 0;
    this.quote = 0;
    this.offset = 0;
    this.stanzaStart = 0;
    this.gap = 0;
    this.stack = [];
  }

  /**
   * Parses the next bytes of the stream. Bad input is reported through
   * `handlers.error`; only an exception thrown by a handler itself escapes.
   */
  feed(chunk: Uint8Array): void {
    if (this.phase === Phase.Done) return;
    // Whitespace between stanzas is counted per burst: a pause starts the count
    // again, so keepalives never add up, while a flood does.
    const now = performance.now();
    if (now - this.lastFeed > GAP_PAUSE_MS) this.gap = 0;
    this.lastFeed = now;
    let text: string;
    try {
      text = this.decoder.decode(chunk, { stream: true });
    } catch {
      return this.fail(new StreamError("unsupported-encoding", "invalid UTF-8"));
    }
    if (FORBIDDEN_CHARS.test(text)) {
      return this.fail(new StreamError("not-well-formed", "a character XML does not allow"));
    }
    this.buf = this.buf.length === 0 ? text : this.buf + text;
    try {
      this.run();
    } catch (e) {
      if (e instanceof StreamError) return this.fail(e);
      // A handler's bug: this stream cannot go on; the caller logs it and closes.
      this.phase = Phase.Done;
      throw e;
    }
  }

  private fail(e: StreamError): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    this.buf = "";
    this.stack = [];
    this.handlers.error(e.condition, e.message);
  }

  /** Consumes every complete token in `buf`; keeps an unfinished one for later. */
  private run(): void {
    const generation = this.generation;
    let pos = 0;
    while (this.phase !== Phase.Done && generation === this.generation) {
      const buf = this.buf;
      if (pos >= buf.length) break;
      let next: number;
      if (buf.charCodeAt(pos) !== LT) next = this.textRun(pos);
      else next = this.markup(pos);
      if (generation !== this.generation) return; // reset() from a callback
      if (next === -1) {
        this.checkPending(pos);
        break;
      }
      pos = next;
      this.scan = pos;
      // An open stanza is measured after every token, not only when a read ends
      // mid-token: reads that always end on a '>' must not let it grow unseen.
      if (this.stack.length > 1 && this.offset + pos - this.stanzaStart > this.opts.maxStanzaSize) {
        throw this.limit("stanza too large");
      }
    }
    if (this.phase === Phase.Done || generation !== this.generation) return;
    if (pos > 0) {
      this.buf = this.buf.slice(pos);
      this.offset += pos;
      this.scan -= pos;
    }
  }

  /** An unfinished token waits for more input: it must still fit its limit. */
  private checkPending(pos: number): void {
    const end = this.offset + this.buf.length;
    if (this.phase === Phase.Prolog) {
      if (end > this.opts.maxHeaderSize) throw this.limit("the stream header is too large");
      return;
    }
    if (this.stack.length === 1) this.stanzaStart = this.offset + pos;
    if (end - this.stanzaStart > this.opts.maxStanzaSize) throw this.limit("stanza too large");
  }

  private limit(text: string): StreamError {
    return new StreamError("policy-violation", text);
  }

  // --- text ------------------------------------------------------------------

  /** Text from `pos` up to the next `<`; returns where it ends, or -1 to wait. */
  private textRun(pos: number): number {
    const buf = this.buf;
    const inStanza = this.stack.length > 1;
    if (!inStanza) {
      // Between stanzas (or before the header) only whitespace: checked, counted, dropped.
      let end = buf.indexOf("<", pos);
      if (end === -1) end = buf.length;
      const ws = buf.slice(pos, end);
      if (!WHITESPACE.test(ws)) {
        throw new StreamError("not-well-formed", "text outside stanzas");
      }
      this.gap += ws.length;
      if (this.phase === Phase.Prolog) {
        if (this.offset + end > this.opts.maxHeaderSize) {
          throw this.limit("the stream header is too large");
        }
      } else if (this.gap > this.opts.maxGap) {
        throw this.limit("too much whitespace between stanzas");
      }
      return end;
    }
    const end = buf.indexOf("<", Math.max(this.scan, pos));
    if (end === -1) {
      this.scan = buf.length;
      return -1;
    }
    let text = buf.slice(pos, end);
    if (text.includes("]]>")) throw new StreamError("not-well-formed", "']]>' in text");
    if (text.includes("\r")) text = text.replace(/\r\n?/g, "\n");
    this.appendText(decodeEntities(text));
    return end;
  }

  private appendText(text: string): void {
    if (text === "") return;
    const children = this.stack[this.stack.length - 1].el!.children;
    const last = children.length - 1;
    if (last >= 0 && typeof children[last] === "string") children[last] += text;
    else children.push(text);
  }

  // --- markup ----------------------------------------------------------------

  /** The markup starting at `pos` (a `<`); returns where it ends, or -1 to wait. */
  private markup(pos: number): number {
    const buf = this.buf;
    if (pos + 1 >= buf.length) return -1;
    const c = buf.charCodeAt(pos + 1);
    if (c === SLASH) {
      const end = buf.indexOf(">", Math.max(this.scan, pos));
      if (end === -1) {
        this.scan = buf.length;
        return -1;
      }
      this.endTag(buf.slice(pos + 2, end), end + 1);
      return end + 1;
    }
    if (c === BANG) return this.declaration(pos);
    if (c === QUESTION) return this.processingInstruction(pos);
    const end = this.findTagEnd(pos);
    if (end === -1) return -1;
    this.startTag(buf.slice(pos + 1, end), pos);
    return end + 1;
  }

  /** The `>` closing a start tag, skipping quoted attribute values; -1 to wait. */
  private findTagEnd(pos: number): number {
    const buf = this.buf;
    let i = Math.max(this.scan, pos + 1);
    let q = this.quote;
    while (i < buf.length) {
      if (q !== 0) {
        const j = buf.indexOf(q === QUOT ? '"' : "'", i);
        if (j === -1) {
          i = buf.length;
          break;
        }
        i = j + 1;
        q = 0;
        continue;
      }
      const c = buf.charCodeAt(i);
      if (c === GT) {
        this.quote = 0;
        return i;
      }
      if (c === QUOT || c === APOS) q = c;
      else if (c === LT) throw new StreamError("not-well-formed", "'<' inside a tag");
      i++;
    }
    this.scan = i;
    this.quote = q;
    return -1;
  }

  /** `<!…`: CDATA inside a stanza; comments and DTDs are refused. */
  private declaration(pos: number): number {
    const buf = this.buf;
    const rest = buf.slice(pos, pos + 9);
    if (rest.length < 9 && ("<![CDATA[".startsWith(rest) || "<!--".startsWith(rest))) return -1;
    if (rest.startsWith("<!--")) {
      throw new StreamError("restricted-xml", "comments are not allowed");
    }
    if (rest !== "<![CDATA[") {
      // <!DOCTYPE, <!ENTITY, <!ELEMENT, …: markup declarations.
      if (/^<![A-Z]/.test(rest)) throw new StreamError("restricted-xml", "DTDs are not allowed");
      throw new StreamError("not-well-formed", "unexpected '<!'");
    }
    if (this.stack.length < 2) throw new StreamError("not-well-formed", "CDATA outside stanzas");
    const end = buf.indexOf("]]>", Math.max(this.scan, pos + 9));
    if (end === -1) {
      this.scan = Math.max(pos + 9, buf.length - 2);
      return -1;
    }
    this.appendText(buf.slice(pos + 9, end).replace(/\r\n?/g, "\n"));
    return end + 3;
  }

  /** `<?…?>`: only the XML declaration, and only before the stream header. */
  private processingInstruction(pos: number): number {
    const buf = this.buf;
    if (this.phase !== Phase.Prolog) {
      throw new StreamError("restricted-xml", "processing instructions are not allowed");
    }
    const end = buf.indexOf("?>", Math.max(this.scan, pos + 2));
    const head = end === -1 ? buf.slice(pos + 2) : buf.slice(pos + 2, end);
    const target = /^[^\s?]*/.exec(head)![0];
    if (end === -1 && target === head && "xml".startsWith(target)) return -1; // may still be one
    if (target !== "xml") {
      throw new StreamError("restricted-xml", "processing instructions are not allowed");
    }
    if (end === -1) {
      this.scan = Math.max(pos + 2, buf.length - 1);
      return -1;
    }
    if (this.offset + end + 2 > this.opts.maxHeaderSize) {
      throw this.limit("the stream header is too large");
    }
    const encoding = /\sencoding\s*=\s*["']([^"']*)["']/.exec(head)?.[1];
    if (encoding !== undefined && encoding.toLowerCase() !== "utf-8") {
      throw new StreamError("unsupported-encoding", `encoding ${encoding} is not UTF-8`);
    }
    if (!/^xml\s+version\s*=\s*["']1\.\d+["']/.test(head)) {
      throw new StreamError("not-well-formed", "malformed XML declaration");
    }
    return end + 2;
  }

  // --- elements --------------------------------------------------------------

  /** A complete start tag (its text between `<` and `>`). */
  private startTag(tag: string, pos: number): void {
    const opts = this.opts;
    const selfClosing = tag.charCodeAt(tag.length - 1) === SLASH;
    const inner = selfClosing ? tag.slice(0, -1) : tag;
    let i = 0;
    while (i < inner.length && !isSpace(inner.charCodeAt(i))) i++;
    const qname = inner.slice(0, i);
    this.checkName(qname, "element");
    const depth = this.stack.length; // 0: the stream header; 1: a stanza
    if (depth === 1) this.stanzaStart = this.offset + pos;
    if (depth - 1 >= opts.maxDepth) throw this.limit("elements nested too deep");

    // Attributes, as written.
    const names: string[] = [];
    const values: string[] = [];
    while (true) {
      const start = i;
      while (i < inner.length && isSpace(inner.charCodeAt(i))) i++;
      if (i === inner.length) break;
      if (i === start) throw new StreamError("not-well-formed", "attributes must be separated");
      const nameStart = i;
      while (i < inner.length) {
        const c = inner.charCodeAt(i);
        if (c === 61 /* = */ || isSpace(c)) break;
        i++;
      }
      const name = inner.slice(nameStart, i);
      this.checkName(name, "attribute");
      while (i < inner.length && isSpace(inner.charCodeAt(i))) i++;
      if (inner.charCodeAt(i) !== 61) {
        throw new StreamError("not-well-formed", `attribute ${name} has no value`);
      }
      i++;
      while (i < inner.length && isSpace(inner.charCodeAt(i))) i++;
      const q = inner.charCodeAt(i);
      if (q !== QUOT && q !== APOS) {
        throw new StreamError("not-well-formed", `the value of ${name} is not quoted`);
      }
      const close = inner.indexOf(q === QUOT ? '"' : "'", i + 1);
      if (close === -1) throw new StreamError("not-well-formed", "unterminated attribute value");
      const raw = inner.slice(i + 1, close);
      i = close + 1;
      if (raw.length > opts.maxAttributeLength) throw this.limit("attribute value too long");
      if (raw.includes("<")) throw new StreamError("not-well-formed", "'<' in an attribute value");
      if (names.includes(name)) {
        throw new StreamError("not-well-formed", `duplicate attribute ${name}`);
      }
      if (names.length >= opts.maxAttributes) throw this.limit("too many attributes");
      names.push(name);
      values.push(decodeEntities(raw.replace(/\r\n|[\t\n\r]/g, " ")));
    }

    // Namespace declarations open a new scope. (Spaces around a namespace name
    // are dropped, as saxes did: " urn:a" is no URI anyway.)
    const parent = depth === 0 ? rootScope() : this.stack[depth - 1].scope;
    let scope = parent;
    for (let k = 0; k < names.length; k++) {
      const name = names[k];
      if (name === "xmlns") {
        if (scope === parent) scope = Object.create(parent) as Scope;
        scope[""] = values[k].trim();
      } else if (name.startsWith("xmlns:")) {
        const prefix = name.slice(6);
        const uri = values[k].trim();
        if (uri === "" || prefix === "xmlns" || (prefix === "xml") !== (uri === XML_NS)) {
          throw new StreamError("not-well-formed", `invalid declaration of prefix ${prefix}`);
        }
        if (scope === parent) scope = Object.create(parent) as Scope;
        scope[prefix] = uri;
      }
    }
    const colon = qname.indexOf(":");
    const prefix = colon === -1 ? "" : qname.slice(0, colon);
    const local = colon === -1 ? qname : qname.slice(colon + 1);
    const uri = scope[prefix] ?? (prefix === "" ? "" : undefined);
    if (uri === undefined) {
      if (depth === 0 && prefix === "stream") {
        throw new StreamError("bad-namespace-prefix", "the stream: prefix is not declared");
      }
      throw new StreamError("bad-namespace-prefix", `prefix ${prefix} is not declared`);
    }

    if (depth === 0) {
      // The header may well arrive whole, in one read: measured here too.
      if (this.offset + pos + tag.length + 2 > opts.maxHeaderSize) {
        throw this.limit("the stream header is too large");
      }
      return this.openStream(qname, local, uri, scope, names, values, selfClosing);
    }

    const attrs: Record<string, string> = {};
    // The stream's default namespace is left out (the Stanza convention), except
    // on an element inside another namespace: a forwarded <message
    // xmlns='jabber:client'/> keeps it, or it would serialise into its parent's.
    if (uri !== opts.defaultNs || (depth > 1 && this.stack[depth - 1].uri !== uri)) {
      attrs.xmlns = uri;
    }
    let expanded: Set<string> | undefined;
    for (let k = 0; k < names.length; k++) {
      const name = names[k];
      if (name === "xmlns" || name.startsWith("xmlns:")) continue;
      const c = name.indexOf(":");
      if (c !== -1) {
        const p = name.slice(0, c);
        const u = scope[p];
        if (u === undefined) {
          throw new StreamError("bad-namespace-prefix", `prefix ${p} is not declared`);
        }
        // Two prefixes for one namespace must not make the same attribute twice.
        expanded ??= new Set();
        const key = u + " " + name.slice(c + 1);
        if (expanded.has(key)) {
          throw new StreamError("not-well-formed", `duplicate attribute ${name}`);
        }
        expanded.add(key);
        if (p !== "xml") attrs["xmlns:" + p] = u;
      }
      attrs[name] = values[k];
    }
    const el = new Stanza(local, attrs);
    if (depth > 1) this.stack[depth - 1].el!.children.push(el);
    if (selfClosing) {
      if (depth === 1) this.stanzaDone(el, pos + tag.length + 2);
      return;
    }
    this.stack.push({ qname, scope, uri, el });
  }

  private checkName(name: string, what: string): void {
    if (name.length > this.opts.maxNameLength) throw this.limit(`${what} name too long`);
    if (!QNAME.test(name)) {
      throw new StreamError("not-well-formed", `invalid ${what} name "${name.slice(0, 40)}"`);
    }
  }

  private openStream(
    qname: string,
    local: string,
    uri: string,
    scope: Scope,
    names: string[],
    values: string[],
    selfClosing: boolean,
  ): void {
    if (local !== "stream" || uri !== STREAMS_NS) {
      throw new StreamError("invalid-namespace", `expected <stream xmlns="${STREAMS_NS}">`);
    }
    if (scope[""] !== this.opts.defaultNs) {
      throw new StreamError(
        "invalid-namespace",
        `the default namespace must be ${this.opts.defaultNs}`,
      );
    }
    const attrs: Record<string, string> = {};
    for (let k = 0; k < names.length; k++) {
      const name = names[k];
      if (name !== "xmlns" && !name.startsWith("xmlns:")) attrs[name] = values[k];
    }
    this.phase = Phase.Open;
    this.gap = 0;
    this.stack.push({ qname, scope, uri, el: undefined });
    this.handlers.streamOpen(attrs);
    if (selfClosing && this.phase === Phase.Open && this.stack.length === 1) this.closeStream();
  }

  /** A complete end tag (its text between `</` and `>`), ending before `after`. */
  private endTag(text: string, after: number): void {
    const name = text.trimEnd();
    const top = this.stack[this.stack.length - 1];
    if (top === undefined || name !== top.qname) {
      throw new StreamError(
        "not-well-formed",
        top ? `</${name.slice(0, 40)}> does not close <${top.qname}>` : "unexpected end tag",
      );
    }
    this.stack.pop();
    const depth = this.stack.length;
    if (depth === 0) return this.closeStream();
    if (depth === 1) this.stanzaDone(top.el!, after);
  }

  /** A stanza is complete (its end tag ends before `after`): dispatch it. */
  private stanzaDone(el: Stanza, after: number): void {
    // The size is checked here too: a stanza that arrived whole was never pending.
    if (this.offset + after - this.stanzaStart > this.opts.maxStanzaSize) {
      throw this.limit("stanza too large");
    }
    this.gap = 0;
    this.handlers.stanza(el);
  }

  private closeStream(): void {
    this.phase = Phase.Done; // nothing may follow the end of the stream
    this.stack = [];
    this.handlers.streamClose();
  }
}

/** Replaces the predefined entities and character references in `s`. */
function decodeEntities(s: string): string {
  let amp = s.indexOf("&");
  if (amp === -1) return s;
  let out = "";
  let last = 0;
  while (amp !== -1) {
    out += s.slice(last, amp);
    const semi = s.indexOf(";", amp);
    if (semi === -1) throw new StreamError("not-well-formed", "'&' without an entity");
    const name = s.slice(amp + 1, semi);
    switch (name) {
      case "lt":
        out += "<";
        break;
      case "gt":
        out += ">";
        break;
      case "amp":
        out += "&";
        break;
      case "quot":
        out += '"';
        break;
      case "apos":
        out += "'";
        break;
      default:
        out += characterReference(name);
    }
    last = semi + 1;
    amp = s.indexOf("&", last);
  }
  return out + s.slice(last);
}

function characterReference(name: string): string {
  if (name.charCodeAt(0) !== 35 /* # */) {
    if (ENTITY_NAME.test(name)) {
      throw new StreamError("restricted-xml", "only the predefined entities are allowed");
    }
    throw new StreamError("not-well-formed", "'&' without an entity");
  }
  const hex = name.charCodeAt(1) === 120; /* x */
  const digits = name.slice(hex ? 2 : 1);
  if (!(hex ? /^[0-9a-fA-F]{1,6}$/ : /^[0-9]{1,7}$/).test(digits)) {
    throw new StreamError("not-well-formed", "malformed character reference");
  }
  const cp = parseInt(digits, hex ? 16 : 10);
  const valid = cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
  if (!valid) throw new StreamError("not-well-formed", "reference to a character XML forbids");
  return String.fromCodePoint(cp);
}

/** Parses one standalone element (for storage and tests); throws on bad or restricted XML. */
export function parseXml(xml: string, defaultNs = "jabber:client"): Stanza {
  let result: Stanza | undefined;
  let error: string | undefined;
  const parser = new StreamParser({
    streamOpen() {},
    stanza(el) {
      result ??= el;
    },
    streamClose() {},
    error(condition, text) {
      error = `${condition}: ${text}`;
    },
  }, {
    maxStanzaSize: Infinity,
    maxAttributeLength: Infinity,
    maxAttributes: Infinity,
    maxDepth: 1000,
    defaultNs,
  });
  const encoder = new TextEncoder();
  parser.feed(
    encoder.encode(`<stream:stream xmlns='${defaultNs}' xmlns:stream='${STREAMS_NS}'>`),
  );
  parser.feed(encoder.encode(xml));
  if (error) throw new Error(error);
  if (!result) throw new Error("not-well-formed: no complete element");
  return result;
}
