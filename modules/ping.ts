/**
 * XMPP Ping (XEP-0199): the server answers pings addressed to it, and, as
 * Prosody does, pings to an account's bare JID (one's own included, or with
 * no `to`): the server answers on the account's behalf, from that JID.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";

export default function ping(module: Module) {
  module.addFeature("urn:xmpp:ping");
  const pong = ({ origin, stanza }: StanzaEvent) => {
    origin.send(stanza.reply());
    return true;
  };
  module.hook("iq-get/bare/urn:xmpp:ping:ping", pong);
  module.hook("iq-get/host/urn:xmpp:ping:ping", pong);
}
