/**
 * Message Carbons (XEP-0280, `urn:xmpp:carbons:2`): a resource that enables
 * carbons gets a copy of the chat messages its account receives on other
 * resources (`<received/>`) and sends from other resources (`<sent/>`).
 * `<private xmlns='urn:xmpp:carbons:2'/>` and the XEP-0334 `<no-copy/>`
 * hint keep a message out of carbons.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { element, message, type Stanza } from "../core/xml/stanza.ts";

const NS = "urn:xmpp:carbons:2";
const FORWARD_NS = "urn:xmpp:forward:0";
const CLIENT_NS = "jabber:client";

function enabled(s: Session): boolean {
  return s.ext?.carbons === true;
}

/** XEP-0280 §6: chat messages, and normal ones with a body; not marked private. */
function eligible(stanza: Stanza): boolean {
  const type = stanza.attrs.type ?? "normal";
  if (type !== "chat" && !(type === "normal" && stanza.getChild("body"))) return false;
  if (stanza.getChild("private", NS) || stanza.getChild("no-copy", "urn:xmpp:hints")) return false;
  if (stanza.getChild("received", NS) || stanza.getChild("sent", NS)) return false;
  return true;
}

/**
 * The forwarded copy of a message. Its namespace is written out: inside
 * `<forwarded/>` the stream's default no longer applies (XEP-0297).
 */
function forwarded(stanza: Stanza): Stanza {
  const copy = stanza.clone();
  const { xmlns, ...attrs } = copy.attrs;
  copy.attrs = { xmlns: xmlns ?? CLIENT_NS, ...attrs };
  return copy;
}

/** `el.toString()` for an element whose only child is already serialised as `childXml`. */
function serializeWith(el: Stanza, childXml: string): string {
  return el.topTag() + childXml + `</${el.name}>`;
}

export default function carbons(module: Module) {
  module.addFeature(NS);

  const toggle = (on: boolean) => ({ origin, stanza }: StanzaEvent<Session>) => {
    (origin.ext ??= {}).carbons = on;
    origin.send(stanza.reply());
    return true;
  };
  module.hook(`iq-set/self/${NS}:enable`, toggle(true));
  module.hook(`iq-set/self/${NS}:disable`, toggle(false));

  // Inline with Bind2 (XEP-0386): `<enable xmlns='urn:xmpp:carbons:2'/>` in the client's `<bind/>`.
  module.hook("advertise-bind-features", ({ features }: { features: Stanza }) => {
    features.tag("feature", { var: NS }).up();
  });
  module.hook(
    "enable-bind-features",
    ({ session, request }: { session: Session; request: Stanza }) => {
      if (request.getChild("enable", NS)) (session.ext ??= {}).carbons = true;
    },
  );

  /** Sends a wrapped copy to the user's enabled resources, except those in `skip`. */
  function copy(username: string, stanza: Stanza, kind: "sent" | "received", skip: Set<Session>) {
    const bareJid = `${username}@${module.host}`;
    let wrapped: Stanza | undefined;
    let wrappedXml: string | undefined;
    for (const s of module.availableResources(username)) {
      if (skip.has(s) || !enabled(s)) continue;
      if (wrapped === undefined) {
        wrapped = element(kind, { xmlns: NS }).tag("forwarded", { xmlns: FORWARD_NS })
          .addChild(forwarded(stanza)).reset();
        wrappedXml = wrapped.toString();
      }
      const carbon = message({ to: s.full_jid, from: bareJid, type: stanza.attrs.type })
        .addChild(wrapped);
      s.send(carbon, serializeWith(carbon, wrappedXml!));
    }
  }

  // Received copies, before normal delivery (which runs at -1).
  function inbound({ stanza, to_user }: StanzaEvent) {
    if (!eligible(stanza)) {
      stanza.removeChildren("private", NS); // XEP-0280 §7: not for the recipient's eyes
      return;
    }
    const to = stanza.attrs.to;
    if (!to || !module.isOnline(to_user!)) return;
    // Resources that get the message itself need no carbon.
    const full = to.includes("/") ? module.fullSession(to) : undefined;
    const direct = new Set(full ? [full] : module.topResources(to_user!));
    copy(to_user!, stanza, "received", direct);
  }
  module.hook("message/full", inbound, 1);
  module.hook("message/bare", inbound, 1);

  // Sent copies, from the sender's other resources.
  function outbound({ origin, stanza }: StanzaEvent<Session>) {
    // (<private/> stays on until delivery: the recipient's side must see it too.)
    if (origin.type !== "c2s" || !eligible(stanza)) return;
    copy(origin.username!, stanza, "sent", new Set([origin]));
  }
  module.hook("pre-message/full", outbound, -0.5);
  module.hook("pre-message/bare", outbound, -0.5);
  module.hook("pre-message/host", outbound, -0.5);
}
