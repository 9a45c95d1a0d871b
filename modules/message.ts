/**
 * Message delivery to local users (RFC 6121 §8.5), Prosody's mod_message.
 *
 * To a full JID: that resource if it is connected, else the bare-JID rules
 * (`groupchat` and `error` are dropped). To a bare JID: `chat` and `normal`
 * go to the available resources with the highest non-negative priority (all
 * of them when they tie, as Prosody does); `headline` to every resource with
 * a non-negative priority; `error` is dropped; `groupchat` fires
 * `message/bare/groupchat`. With no resource to take it, a `chat` or
 * `normal` message to an existing account fires `message/offline/handle`
 * (the offline module stores it); anything left gets `service-unavailable`.
 *
 * A message a connection never wrote out (`delivery/failure`: the connection
 * died or was closed for reading too slowly) is delivered again as if that
 * resource had been unavailable: to the account's other resources, else to
 * offline storage — unless another resource already had its own copy.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { isPromise } from "../core/events.ts";
import type { Stanza } from "../core/xml/stanza.ts";

const CARBONS_NS = "urn:xmpp:carbons:2";

export default function message(module: Module) {
  /** Available resources with a non-negative priority (where headlines go). */
  function nonNegative(username: string): Session[] {
    return module.availableResources(username).filter((s) => s.priority >= 0);
  }

  function unavailable(event: StanzaEvent): true {
    const type = event.stanza.attrs.type;
    if (type !== "error" && type !== "groupchat" && type !== "headline") {
      event.origin.send(event.stanza.errorReply("cancel", "service-unavailable"));
    }
    return true;
  }

  function toBare(event: StanzaEvent): unknown {
    const { stanza } = event;
    const type = stanza.attrs.type ?? "normal";
    if (type === "error") return true;
    const username = event.to_user!;
    if (type === "groupchat") {
      const r = module.fireEvent("message/bare/groupchat", event);
      if (isPromise(r)) return r.then((v) => v ?? unavailable(event));
      return r ?? unavailable(event);
    }
    const targets = type === "headline" ? nonNegative(username) : module.topResources(username);
    if (targets.length > 0) {
      const xml = stanza.toString(); // once for all resources
      for (const s of targets) s.send(stanza, xml);
      return true;
    }
    if (type === "headline") return true; // headlines are not stored
    return offline(event, username);
  }

  async function offline(event: StanzaEvent, username: string) {
    if (!await module.users.userExists(username)) return unavailable(event);
    const handled = await module.fireEvent("message/offline/handle", {
      username,
      origin: event.origin,
      stanza: event.stanza,
    });
    return handled ?? unavailable(event);
  }

  module.hook("message/bare", toBare, -1);

  module.hook("message/full", (event: StanzaEvent) => {
    const { stanza } = event;
    const target = module.fullSession(stanza.attrs.to!);
    if (target?.send(stanza)) return true;
    const type = stanza.attrs.type;
    if (type === "error" || type === "groupchat") return true;
    return toBare(event);
  }, -1);

  module.hook("delivery/failure", ({ session, stanza }: { session: Session; stanza: Stanza }) => {
    if (stanza.name !== "message") return;
    const type = stanza.attrs.type ?? "normal";
    // Errors, groupchat and headlines are never stored; carbons are only copies.
    if (type === "error" || type === "groupchat" || type === "headline") return true;
    if (stanza.getChild("received", CARBONS_NS) || stanza.getChild("sent", CARBONS_NS)) return true;
    const to = stanza.attrs.to;
    if (to === undefined || !to.includes("@")) return true;
    if (!to.includes("/")) {
      // Sent to the bare JID: resources as high as this one had their own copy.
      const others = nonNegative(to.slice(0, to.indexOf("@")));
      if (others.some((s) => s.priority >= session.priority)) return true;
    }
    module.log.debug("delivering again a message {id} {to} never got", {
      id: stanza.attrs.id,
      to: session.full_jid,
    });
    return module.send(stanza).then(() => true);
  });
}
