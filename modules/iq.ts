/**
 * IQ dispatch (Prosody's mod_iq): an iq get/set to a bare JID, one's own
 * account or a host fires `iq/<kind>/<ns>:<child>` and then
 * `iq-<type>/<kind>/<ns>:<child>`; results and errors fire
 * `iq-<type>/<kind>/<id>`. An iq to a full JID goes to that resource, and a
 * get/set to a resource that is not there gets `service-unavailable` — also
 * when its connection dies before the request was written out.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Stanza } from "../core/xml/stanza.ts";

export default function iq(module: Module) {
  module.hook("iq/full", ({ origin, stanza }: StanzaEvent) => {
    const target = module.fullSession(stanza.attrs.to!);
    if (target?.send(stanza)) return true;
    const type = stanza.attrs.type;
    if (type === "get" || type === "set") {
      origin.send(stanza.errorReply("cancel", "service-unavailable"));
    }
    return true;
  });

  for (const kind of ["bare", "self", "host"]) {
    module.hook("iq/" + kind, (event: StanzaEvent) => {
      const stanza = event.stanza;
      const type = stanza.attrs.type;
      if (type === "get" || type === "set") {
        const child = stanza.firstChild()!;
        const key = kind + "/" + child.attrs.xmlns + ":" + child.name;
        const r = module.fireEvent("iq/" + key, event);
        if (r !== undefined) return r;
        return module.fireEvent("iq-" + type + "/" + key, event);
      }
      return module.fireEvent("iq-" + type + "/" + kind + "/" + stanza.attrs.id, event);
    });
  }

  // A request a connection never wrote out: the sender learns the resource is gone.
  module.hook("delivery/failure", ({ stanza }: { stanza: Stanza }) => {
    if (stanza.name !== "iq") return;
    const type = stanza.attrs.type;
    if ((type === "get" || type === "set") && stanza.attrs.from !== undefined) {
      module.send(stanza.errorReply("cancel", "service-unavailable"));
    }
    return true;
  });
}
