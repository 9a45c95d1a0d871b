/**
 * The XML element every stanza is made of, with Prosody's `util.stanza`
 * builder and accessors, and its serializer.
 *
 * Conventions (as in Prosody): the stream's default namespace (`jabber:client`)
 * is not stored, so `attrs.xmlns` is `undefined` on ordinary stanzas and their
 * children; any other namespace is stored in `attrs.xmlns` of every element in
 * it. A `jabber:client` element inside another namespace (a forwarded
 * message) says so explicitly; lookups treat `undefined` and `jabber:client`
 * alike. The serializer leaves out an `xmlns` equal to the parent's.
 *
 * @example
 * ```ts
 * const s = iq({ type: "get", id: "1", to: "localhost" })
 *   .tag("ping", { xmlns: "urn:xmpp:ping" }).up();
 * s.toString(); // <iq type="get" id="1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>
 * ```
 * @module
 */

export type Attrs = Record<string, string | undefined>;
export type Node = Stanza | string;

const STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const CLIENT_NS = "jabber:client";

/** Whether two stored namespaces are the same (undefined is jabber:client). */
function sameNs(a: string | undefined, b: string | undefined): boolean {
  return a === b || (a ?? CLIENT_NS) === (b ?? CLIENT_NS);
}

export class Stanza {
  name: string;
  attrs: Attrs;
  children: Node[];
  /** Builder cursor: the path from the root to the element `tag()` and `text()` write into. */
  private cursor: Stanza[] | undefined;

  constructor(name: string, attrs?: Attrs, children?: Node[]) {
    this.name = name;
    this.attrs = attrs ?? {};
    this.children = children ?? [];
    this.cursor = undefined;
  }

  private current(): Stanza {
    const c = this.cursor;
    return c === undefined || c.length === 0 ? this : c[c.length - 1];
  }

  /** Adds a child element at the cursor and moves the cursor into it. */
  tag(name: string, attrs?: Attrs): this {
    const child = new Stanza(name, attrs);
    this.current().children.push(child);
    (this.cursor ??= []).push(child);
    return this;
  }

  /** Adds text at the cursor (empty text is ignored). */
  text(text: string | undefined | null): this {
    if (text) this.current().children.push(text);
    return this;
  }

  /** Adds `<name>text</name>` at the cursor without moving into it. */
  textTag(name: string, text: string, attrs?: Attrs): this {
    this.current().children.push(new Stanza(name, attrs, text ? [text] : []));
    return this;
  }

  /** Adds an existing element at the cursor. */
  addChild(child: Stanza): this {
    this.current().children.push(child);
    return this;
  }

  /** Adds an existing element directly under the root, ignoring the cursor. */
  addDirectChild(child: Stanza): this {
    this.children.push(child);
    return this;
  }

  /** Moves the cursor to the parent. */
  up(): this {
    this.cursor?.pop();
    return this;
  }

  /** Moves the cursor back to the root. */
  reset(): this {
    this.cursor = undefined;
    return this;
  }

  /**
   * First child element with this name and namespace; `xmlns` defaults to
   * this element's own. A child without an `xmlns` of its own (built with
   * `tag()`) is in this element's namespace, as it would be on the wire.
   */
  getChild(name?: string, xmlns?: string): Stanza | undefined {
    const own = this.attrs.xmlns;
    const ns = xmlns ?? own;
    for (const c of this.children) {
      if (typeof c === "string") continue;
      if ((name === undefined || c.name === name) && sameNs(c.attrs.xmlns ?? own, ns)) return c;
    }
    return undefined;
  }

  getChildText(name?: string, xmlns?: string): string | undefined {
    return this.getChild(name, xmlns)?.getText();
  }

  getChildAttr(name: string, xmlns: string | undefined, attr: string): string | undefined {
    return this.getChild(name, xmlns)?.attrs[attr];
  }

  /** First child element in namespace `xmlns`, whatever its name. */
  childWithNs(xmlns: string): Stanza | undefined {
    const own = this.attrs.xmlns;
    for (const c of this.children) {
      if (typeof c !== "string" && sameNs(c.attrs.xmlns ?? own, xmlns)) return c;
    }
    return undefined;
  }

  /** The first child element, whatever its name and namespace. */
  firstChild(): Stanza | undefined {
    for (const c of this.children) if (typeof c !== "string") return c;
    return undefined;
  }

  /** Child elements matching name and namespace (either may be left out to match any). */
  *childTags(name?: string, xmlns?: string): Generator<Stanza> {
    for (const c of this.children) {
      if (typeof c === "string") continue;
      if (name !== undefined && c.name !== name) continue;
      if (xmlns !== undefined && !sameNs(c.attrs.xmlns, xmlns)) continue;
      yield c;
    }
  }

  /** All child elements. */
  tags(): Stanza[] {
    return this.children.filter((c): c is Stanza => typeof c !== "string");
  }

  /** The concatenated text of this element's text children. */
  getText(): string {
    let s = "";
    for (const c of this.children) if (typeof c === "string") s += c;
    return s;
  }

  /** Removes children matching name and namespace (either may be left out to match any). */
  removeChildren(name?: string, xmlns?: string): this {
    const own = this.attrs.xmlns;
    this.children = this.children.filter((c) =>
      typeof c === "string" ||
      !((name === undefined || c.name === name) &&
        (xmlns === undefined || sameNs(c.attrs.xmlns ?? own, xmlns)))
    );
    return this;
  }

  /** Replaces each child element with `fn(child)`; `undefined` removes it. */
  mapTags(fn: (child: Stanza) => Stanza | undefined): this {
    const out: Node[] = [];
    for (const c of this.children) {
      if (typeof c === "string") out.push(c);
      else {
        const r = fn(c);
        if (r) out.push(r);
      }
    }
    this.children = out;
    return this;
  }

  /** The error of an error stanza: type, defined condition, text. */
  getError(): { type?: string; condition?: string; text?: string } {
    const error = this.getChild("error");
    if (!error) return {};
    let condition: string | undefined;
    let text: string | undefined;
    for (const c of error.childTags(undefined, STANZAS_NS)) {
      if (c.name === "text") text = c.getText();
      else condition ??= c.name;
    }
    return { type: error.attrs.type, condition, text };
  }

  /** A deep copy (the builder cursor is not copied). */
  clone(): Stanza {
    const children: Node[] = new Array(this.children.length);
    for (let i = 0; i < this.children.length; i++) {
      const c = this.children[i];
      children[i] = typeof c === "string" ? c : c.clone();
    }
    return new Stanza(this.name, { ...this.attrs }, children);
  }

  /** A reply: `to` and `from` swapped, same id; an iq becomes `type="result"` without payload. */
  reply(): Stanza {
    const a = this.attrs;
    const attrs: Attrs = { id: a.id };
    if (a.from !== undefined) attrs.to = a.from;
    if (a.to !== undefined) attrs.from = a.to;
    attrs.type = this.name === "iq" ? "result" : a.type;
    if (attrs.id === undefined) delete attrs.id;
    if (attrs.type === undefined) delete attrs.type;
    return new Stanza(this.name, attrs);
  }

  /**
   * An error reply carrying the original payload, with the cursor left inside
   * `<error/>` so an application-specific condition can be added.
   */
  errorReply(type: ErrorType, condition: string, text?: string, by?: string): Stanza {
    const r = this.reply();
    r.attrs.type = "error";
    if (this.name !== "iq") { for (const c of this.children) r.children.push(c); }
    r.tag("error", by ? { type, by } : { type })
      .tag(condition, { xmlns: STANZAS_NS }).up();
    if (text) r.textTag("text", text, { xmlns: STANZAS_NS });
    return r;
  }

  /** The opening tag only, e.g. for logs. */
  topTag(): string {
    let s = "<" + this.name;
    for (const k in this.attrs) {
      const v = this.attrs[k];
      if (v !== undefined) s += " " + k + '="' + escapeAttr(v) + '"';
    }
    return s + (this.children.length ? ">" : "/>");
  }

  toString(): string {
    return serialize(this, undefined);
  }
}

export type ErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

/** An error a handler can throw; the router turns it into an error reply. */
export class StanzaError extends Error {
  constructor(
    readonly type: ErrorType,
    readonly condition: string,
    readonly text?: string,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = "StanzaError";
  }
}

const ATTR_SPECIALS = /[&<>"']/;
const TEXT_SPECIALS = /[&<>]/;

export function escapeAttr(s: string): string {
  if (!ATTR_SPECIALS.test(s)) return s;
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/**
 * A stream error element (RFC 6120 §4.9) as XML, for writing straight to a
 * connection; `text` is escaped.
 *
 * @example
 * ```ts
 * conn.write(streamErrorXml("host-unknown", "No such host") + "</stream:stream>");
 * ```
 */
export function streamErrorXml(condition: string, text?: string): string {
  const ns = "urn:ietf:params:xml:ns:xmpp-streams";
  return `<stream:error><${condition} xmlns='${ns}'/>` +
    (text ? `<text xmlns='${ns}'>${escapeText(text)}</text>` : "") + "</stream:error>";
}

export function escapeText(s: string): string {
  if (!TEXT_SPECIALS.test(s)) return s;
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function serialize(el: Stanza, parentNs: string | undefined): string {
  let s = "<" + el.name;
  const attrs = el.attrs;
  for (const k in attrs) {
    const v = attrs[k];
    if (v === undefined) continue;
    if (k === "xmlns" && v === parentNs) continue;
    s += " " + k + '="' + escapeAttr(v) + '"';
  }
  const children = el.children;
  if (children.length === 0) return s + "/>";
  s += ">";
  const ns = attrs.xmlns ?? parentNs;
  for (let i = 0; i < children.length; i++) {
    const c = children[i];
    s += typeof c === "string" ? escapeText(c) : serialize(c, ns);
  }
  return s + "</" + el.name + ">";
}

/** A `<message/>` stanza, with a `<body/>` when `body` is given. */
export function message(attrs?: Attrs, body?: string): Stanza {
  const m = new Stanza("message", attrs);
  if (body !== undefined) m.textTag("body", body);
  return m;
}

export function presence(attrs?: Attrs): Stanza {
  return new Stanza("presence", attrs);
}

export function iq(attrs: Attrs & { type: string; id: string }): Stanza {
  return new Stanza("iq", attrs);
}

/** Any element, e.g. a nonza: `element("success", { xmlns: SASL_NS })`. */
export function element(name: string, attrs?: Attrs): Stanza {
  return new Stanza(name, attrs);
}
