/**
 * Data forms (XEP-0004) as submitted: the fields of an `<x xmlns='jabber:x:data'/>`
 * and their values, and a builder for the forms a server sends.
 *
 * @example
 * ```ts
 * const form = readForm(query.getChild("x", DATAFORM_NS)!);
 * form.type;                // "urn:xmpp:mam:2" (the FORM_TYPE)
 * form.fields.get("with");  // ["romeo@example.com"]
 * ```
 * @module
 */
import { element, type Stanza } from "./stanza.ts";

export const DATAFORM_NS = "jabber:x:data";

/** A submitted form: its FORM_TYPE and each other field's values. */
export interface SubmittedForm {
  type: string | undefined;
  fields: Map<string, string[]>;
}

/** Reads a submitted form; fields without a `var` are skipped. */
export function readForm(x: Stanza): SubmittedForm {
  const fields = new Map<string, string[]>();
  let type: string | undefined;
  for (const field of x.tags()) {
    if (field.name !== "field") continue;
    const name = field.attrs.var;
    if (name === undefined) continue;
    const values = field.tags().filter((v) => v.name === "value").map((v) => v.getText());
    if (name === "FORM_TYPE") type = values[0];
    else fields.set(name, values);
  }
  return { type, fields };
}

/** One field of a form the server sends. */
export interface FormField {
  var: string;
  type?: string;
  label?: string;
  values?: string[];
}

/**
 * A form (`type` "form" or "result") with its FORM_TYPE and fields.
 *
 * @example
 * ```ts
 * buildForm("form", "urn:xmpp:mam:2", [{ var: "with", type: "jid-single" }]);
 * ```
 */
export function buildForm(type: string, formType: string, fields: FormField[]): Stanza {
  const x = element("x", { xmlns: DATAFORM_NS, type })
    .tag("field", { var: "FORM_TYPE", type: "hidden" }).textTag("value", formType).up();
  for (const f of fields) {
    const attrs: Record<string, string> = { var: f.var };
    if (f.type) attrs.type = f.type;
    if (f.label) attrs.label = f.label;
    x.tag("field", attrs);
    for (const v of f.values ?? []) x.textTag("value", v);
    x.up();
  }
  return x;
}
