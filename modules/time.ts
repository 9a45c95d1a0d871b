/**
 * Entity Time (XEP-0202): the server's clock, in UTC.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";

const NS = "urn:xmpp:time";

export default function time(module: Module) {
  module.addFeature(NS);
  module.hook(`iq-get/host/${NS}:time`, ({ origin, stanza }) => {
    const utc = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    origin.send(
      stanza.reply().tag("time", { xmlns: NS }).textTag("tzo", "+00:00").textTag("utc", utc),
    );
    return true;
  });
}
