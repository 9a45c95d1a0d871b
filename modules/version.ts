/**
 * Software Version (XEP-0092): name, version and (unless `hide_os_type`)
 * operating system of the server.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import { CADENCE_VERSION } from "../core/version.ts";

const NS = "jabber:iq:version";

export default function version(module: Module) {
  module.addFeature(NS);
  const hideOs = module.getOptionBoolean("hide_os_type", false);
  const os = `${Deno.build.os} ${Deno.build.arch} (Deno ${Deno.version.deno})`;

  module.hook(`iq-get/host/${NS}:query`, ({ origin, stanza }) => {
    const reply = stanza.reply().tag("query", { xmlns: NS })
      .textTag("name", "Cadence")
      .textTag("version", CADENCE_VERSION);
    if (!hideOs) reply.textTag("os", os);
    origin.send(reply);
    return true;
  });
}
