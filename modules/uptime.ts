/**
 * Last Activity (XEP-0012) on the server JID: how long the server has run.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";

const NS = "jabber:iq:last";

export default function uptime(module: Module) {
  module.addFeature(NS);
  module.hook(`iq-get/host/${NS}:query`, ({ origin, stanza }) => {
    const seconds = Math.floor((Date.now() - module.startTime) / 1000);
    origin.send(stanza.reply().tag("query", { xmlns: NS, seconds: String(seconds) }));
    return true;
  });
}
