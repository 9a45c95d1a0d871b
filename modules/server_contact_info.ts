/**
 * Contact Addresses for XMPP Services (XEP-0157): the `contact_info` option
 * (`{ abuse: ["mailto:…"], admin: [...], feedback, sales, security, status,
 * support }`, Prosody's key names) as an XEP-0128 form in the host's
 * disco#info, each key as the registered `<key>-addresses` field. As
 * Prosody's, the form carries every registered field, empty where nothing
 * is configured. Without `contact_info`, the `admins` are listed as `xmpp:`
 * addresses, as Prosody does.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import { element } from "../core/xml/stanza.ts";

/** The fields of the `http://jabber.org/network/serverinfo` form, in the registry's order. */
const FIELDS = ["abuse", "admin", "feedback", "sales", "security", "status", "support"];

export default function serverContactInfo(module: Module) {
  let info = module.getOption<Record<string, string[] | string> | undefined>("contact_info");
  if (!info) {
    const admins = [...module.getOptionInheritedSet("admins")];
    info = admins.length ? { admin: admins.map((jid) => `xmpp:${jid}`) } : {};
  }
  const form = element("x", { xmlns: "jabber:x:data", type: "result" })
    .tag("field", { var: "FORM_TYPE", type: "hidden" })
    .textTag("value", "http://jabber.org/network/serverinfo").up();
  for (const name of FIELDS) {
    const value = info[name];
    // One address may be given as a plain string.
    const addresses = typeof value === "string" ? [value] : value ?? [];
    form.tag("field", { var: `${name}-addresses`, type: "list-multi" });
    for (const a of addresses) form.textTag("value", a);
    form.up();
  }
  module.addItem("extension", form.reset());
}
