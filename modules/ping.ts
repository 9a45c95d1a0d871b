/**
 * XMPP Ping (XEP-0199): the server answers pings addressed to it.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";

export default function ping(module: Module) {
  module.addFeature("urn:xmpp:ping");
  module.hook("iq-get/host/urn:xmpp:ping:ping", ({ origin, stanza }) => {
    origin.send(stanza.reply());
    return true;
  });
}
