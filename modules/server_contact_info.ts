/**
 * Contact Addresses for XMPP Services (XEP-0157): the `contact_info` option
 * (`{ abuse: ["mailto:…"], admin: [...], feedback, sales, security,
 * support }`) as an XEP-0128 form in the host's disco#info. Without
 * `contact_info`, the `admins` are listed as `xmpp:` addresses, as Prosody
 * does.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import { element } from "../core/xml/stanza.ts";

const FIELDS = ["abuse", "admin", "feedback", "sales", "security", "support"];

export default function serverContactInfo(module: Module) {
  let info = module.getOption<Record<string, string[]> | undefined>("contact_info");
  if (!info) {
    const admins = [...module.getOptionInheritedSet("admins")];
    info = admins.length ? { admin: admins.map((jid) => `xmpp:${jid}`) } : {};
  }
  const form = element("x", { xmlns: "jabber:x:data", type: "result" })
    .tag("field", { var: "FORM_TYPE", type: "hidden" })
    .textTag("value", "http://jabber.org/network/serverinfo").up();
  for (const name of FIELDS) {
    const addresses = info[name];
    if (!addresses?.length) continue;
    form.tag("field", { var: `${name}-addresses`, type: "list-multi" });
    for (const a of addresses) form.textTag("value", a);
    form.up();
  }
  module.addItem("extension", form.reset());
}
