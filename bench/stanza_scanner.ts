/**
 * Cuts the text a server sends into complete stanzas of one kind
 * (`<message …>…</message>`, say), whatever the TCP chunking, so a measured
 * phase can count them as they arrive. String search only, no XML parser:
 * the load generator must stay cheap beside the server it measures.
 * Self-closing elements (`<presence …/>`) and other stanzas are skipped.
 * @module
 */

/** Splits received text into complete `<name …>…</name>` elements. */
export class StanzaScanner {
  private text = "";
  private readonly open: string;
  private readonly close: string;

  constructor(name: string, private readonly onStanza: (stanza: string) => void) {
    this.open = `<${name}`;
    this.close = `</${name}>`;
  }

  /** Feeds received text; calls `onStanza` for each element it completes. */
  push(chunk: string): void {
    this.text += chunk;
    let from = 0;
    while (true) {
      const end = this.text.indexOf(this.close, from);
      if (end < 0) break;
      const start = this.text.lastIndexOf(this.open, end);
      if (start >= from) this.onStanza(this.text.slice(start, end + this.close.length));
      from = end + this.close.length;
    }
    // Keep only what may still become a stanza: from the last opening tag
    // on, or the tail that could be the start of one split by the chunking.
    const keep = this.text.lastIndexOf(this.open);
    const tail = Math.max(from, this.text.length - this.open.length);
    this.text = this.text.slice(keep >= from ? keep : tail);
  }
}

/** The opening tag of a stanza (up to its first `>`). */
export function openingTag(stanza: string): string {
  return stanza.slice(0, stanza.indexOf(">") + 1);
}

/** True when a stanza's opening tag says `type='error'`. */
export function isErrorStanza(stanza: string): boolean {
  return /\stype=(['"])error\1/.test(openingTag(stanza));
}
