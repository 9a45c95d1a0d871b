/**
 * STARTTLS (RFC 6120 §5): offers `<starttls/>` on plain streams (marked
 * `<required/>` when `c2s_require_encryption` is on) and upgrades the
 * connection in place when the client asks.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import { element } from "../core/xml/stanza.ts";

const TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls";

export default function tls(module: Module) {
  const required = module.getOptionBoolean("c2s_require_encryption", true);

  module.hook("stream-features", ({ origin, features }) => {
    if (origin.secure || origin.type !== "c2s_unauthed" || !origin.conn.canStartTls) return;
    if (!module.tlsFor()) return;
    features.tag("starttls", { xmlns: TLS_NS });
    if (required) features.tag("required").up();
    features.up();
  });

  module.hookTag(TLS_NS, "starttls", (session) => {
    const tls = module.tlsFor();
    if (session.secure || session.type !== "c2s_unauthed" || !tls || !session.conn.canStartTls) {
      session.send(element("failure", { xmlns: TLS_NS }));
      session.close();
      return true;
    }
    session.send(element("proceed", { xmlns: TLS_NS }));
    session.conn.startTls(tls.context);
    session.secure = true;
    session.tlsHost = module.host;
    session.resetStream();
    return true;
  });
}
