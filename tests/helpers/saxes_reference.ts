/**
 * The stream parser Cadence used before its own (an adapter over npm saxes),
 * kept for the tests only: the differential test feeds the same input to both
 * and compares what they accept and build. Not used by the server.
 * @module
 */
import { type SaxesAttributeNS, SaxesParser, type SaxesTagNS } from "saxes";
import { Stanza } from "../../core/xml/stanza.ts";

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
  /** Largest stanza in bytes (characters, for non-ASCII text); default 256 KiB. */
  maxStanzaSize: number;
  /** Deepest nesting of elements within a stanza; default 64. */
  maxDepth: number;
  /** The namespace stanzas must be in by default; default "jabber:client". */
  defaultNs: string;
}

export const STREAMS_NS = "http://etherx.jabber.org/streams";

class StreamError extends Error {
  constructor(readonly condition: StreamErrorCondition, message: string) {
    super(message);
  }
}

export class SaxesStreamParser {
  private opts: ParserOptions;
  private sax!: SaxesParser<{ xmlns: true; position: true }>;
  private decoder!: TextDecoder;
  /** Elements open below the stream root; [0] is the stanza being built. */
  private stack: Stanza[] = [];
  private depth = 0;
  /** Parser position where the current stanza (or the gap before it) began. */
  private stanzaStart = 0;
  private failed = false;

  constructor(private handlers: StreamHandlers, opts: Partial<ParserOptions> = {}) {
    this.opts = {
      maxStanzaSize: opts.maxStanzaSize ?? 256 * 1024,
      maxDepth: opts.maxDepth ?? 64,
      defaultNs: opts.defaultNs ?? "jabber:client",
    };
    this.reset();
  }

  /** Starts over for a new stream (after STARTTLS or SASL success); safe inside a callback. */
  reset(): void {
    const sax = new SaxesParser({ xmlns: true, position: true });
    this.sax = sax;
    this.decoder = new TextDecoder("utf-8", { fatal: true });
    this.stack = [];
    this.depth = 0;
    this.stanzaStart = 0;
    // Events from a parser that was replaced mid-chunk are ignored.
    sax.on("opentag", (tag) => sax === this.sax && this.open(tag));
    sax.on("closetag", () => sax === this.sax && this.close());
    sax.on("text", (text) => sax === this.sax && this.text(text));
    sax.on("cdata", (text) => sax === this.sax && this.text(text));
    sax.on("doctype", () => {
      throw new StreamError("restricted-xml", "DTDs are not allowed");
    });
    sax.on("comment", () => {
      throw new StreamError("restricted-xml", "comments are not allowed");
    });
    sax.on("processinginstruction", () => {
      throw new StreamError("restricted-xml", "processing instructions are not allowed");
    });
  }

  /** Parses the next bytes of the stream. Never throws. */
  feed(chunk: Uint8Array): void {
    if (this.failed) return;
    const sax = this.sax;
    let text: string;
    try {
      text = this.decoder.decode(chunk, { stream: true });
    } catch {
      this.failed = true;
      return this.handlers.error("unsupported-encoding", "invalid UTF-8");
    }
    try {
      sax.write(text);
      if (
        sax === this.sax && this.depth > 1 &&
        sax.position - this.stanzaStart > this.opts.maxStanzaSize
      ) {
        throw new StreamError("policy-violation", "stanza too large");
      }
    } catch (e) {
      this.fail(e);
    }
  }

  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    if (e instanceof StreamError) return this.handlers.error(e.condition, e.message);
    const message = (e as Error)?.message ?? String(e);
    if (/undefined entity|entity name/.test(message)) {
      return this.handlers.error("restricted-xml", "only the predefined entities are allowed");
    }
    if (/doctype/i.test(message)) {
      return this.handlers.error("restricted-xml", "DTDs are not allowed");
    }
    if (/prefix/.test(message)) return this.handlers.error("bad-namespace-prefix", message);
    this.handlers.error("not-well-formed", message);
  }

  private open(tag: SaxesTagNS): void {
    const depth = ++this.depth;
    if (depth === 1) return this.openStream(tag);
    if (depth - 1 > this.opts.maxDepth) {
      throw new StreamError("policy-violation", "elements nested too deep");
    }
    const attrs: Record<string, string> = {};
    const uri = tag.uri;
    // (As Cadence's parser: jabber:client is kept on an element inside another namespace.)
    const parent = this.stack[this.stack.length - 1];
    const parentUri = parent?.attrs.xmlns ?? this.opts.defaultNs;
    if (uri !== this.opts.defaultNs || parentUri !== uri) attrs.xmlns = uri;
    const attributes = tag.attributes as Record<string, SaxesAttributeNS>;
    for (const key in attributes) {
      const a = attributes[key];
      if (a.prefix === "xmlns" || key === "xmlns") continue;
      if (a.prefix && a.prefix !== "xml") attrs["xmlns:" + a.prefix] = a.uri;
      attrs[key] = a.value;
    }
    const el = new Stanza(tag.local, attrs);
    const stack = this.stack;
    if (stack.length > 0) stack[stack.length - 1].children.push(el);
    stack.push(el);
  }

  private openStream(tag: SaxesTagNS): void {
    if (tag.local !== "stream" || tag.uri !== STREAMS_NS) {
      if (tag.uri === "" && tag.prefix === "stream") {
        throw new StreamError("bad-namespace-prefix", "the stream: prefix is not declared");
      }
      throw new StreamError("invalid-namespace", `expected <stream xmlns="${STREAMS_NS}">`);
    }
    const defaultNs = this.sax.resolve("");
    if (defaultNs !== this.opts.defaultNs) {
      throw new StreamError(
        "invalid-namespace",
        `the default namespace must be ${this.opts.defaultNs}`,
      );
    }
    const attrs: Record<string, string> = {};
    const attributes = tag.attributes as Record<string, SaxesAttributeNS>;
    for (const key in attributes) {
      const a = attributes[key];
      if (a.prefix === "xmlns" || key === "xmlns") continue;
      attrs[key] = a.value;
    }
    this.stanzaStart = this.sax.position;
    this.handlers.streamOpen(attrs);
  }

  private close(): void {
    const depth = this.depth--;
    if (depth === 1) {
      this.failed = true; // nothing may follow the end of the stream
      return this.handlers.streamClose();
    }
    const el = this.stack.pop()!;
    if (depth === 2) {
      const end = this.sax.position;
      if (end - this.stanzaStart > this.opts.maxStanzaSize) {
        throw new StreamError("policy-violation", "stanza too large");
      }
      this.stanzaStart = end;
      this.handlers.stanza(el);
    }
  }

  private text(text: string): void {
    const stack = this.stack;
    if (stack.length === 0) {
      // Between stanzas only whitespace (keepalives) is allowed.
      if (!/^\s*$/.test(text)) throw new StreamError("not-well-formed", "text outside stanzas");
      this.stanzaStart = this.sax.position;
      return;
    }
    const children = stack[stack.length - 1].children;
    const last = children.length - 1;
    if (last >= 0 && typeof children[last] === "string") children[last] += text;
    else children.push(text);
  }
}
