/**
 * In-Band Registration (XEP-0077). Creating an account before logging in is
 * off unless `allow_registration` is true (and needs TLS while
 * `c2s_require_encryption` is on). A logged-in user may always change their
 * password or remove their account, so the host's disco#info lists
 * `jabber:iq:register` whenever this module is loaded, as Prosody's does.
 * @module
 */
import type { Module } from "../core/moduleapi.ts";
import type { StanzaEvent } from "../core/router.ts";
import type { Session } from "../core/session.ts";
import { prepNode } from "../core/jid.ts";
import { saslprep } from "../core/sasl/saslprep.ts";
import { element, type Stanza } from "../core/xml/stanza.ts";

const NS = "jabber:iq:register";

export default function register(module: Module) {
  const host = module.host;
  const allow = module.getOptionBoolean("allow_registration", false);
  const requireEncryption = module.getOptionBoolean("c2s_require_encryption", true);
  const users = () => module.users;
  module.addFeature(NS);

  module.hook("stream-features", ({ origin, features }) => {
    if (allow && origin.type === "c2s_unauthed") {
      features.addChild(element("register", { xmlns: "http://jabber.org/features/iq-register" }));
    }
  });

  function fields(stanza: Stanza) {
    const query = stanza.getChild("query", NS)!;
    const username = query.getChildText("username", NS);
    const password = query.getChildText("password", NS);
    return {
      remove: query.getChild("remove", NS) !== undefined,
      username: username === undefined ? undefined : prepNode(username.trim()),
      rawUsername: username,
      password: password === undefined ? undefined : saslprep(password),
    };
  }

  // Before authentication: account creation.
  module.hook(`stanza/iq/${NS}:query`, async ({ origin, stanza }: StanzaEvent<Session>) => {
    if (origin.type !== "c2s_unauthed") return;
    if (!allow) {
      origin.send(stanza.errorReply("cancel", "not-allowed", "Registration is not allowed"));
      return true;
    }
    if (requireEncryption && !origin.secure) {
      origin.send(stanza.errorReply("cancel", "not-allowed", "Encryption is required"));
      return true;
    }
    if (stanza.attrs.type === "get") {
      origin.send(
        stanza.reply().tag("query", { xmlns: NS })
          .textTag("instructions", "Choose a username and password.")
          .tag("username").up().tag("password").up(),
      );
      return true;
    }
    const { username, rawUsername, password } = fields(stanza);
    if (!rawUsername || !password) {
      origin.send(stanza.errorReply("modify", "not-acceptable", "Username and password needed"));
      return true;
    }
    if (!username) {
      origin.send(stanza.errorReply("modify", "jid-malformed", "Invalid username"));
      return true;
    }
    if (await users().userExists(username)) {
      origin.send(stanza.errorReply("cancel", "conflict", "That username is taken"));
      return true;
    }
    await users().createUser(username, password);
    module.log.info("registered {user}@{host} in-band", { user: username, host });
    await module.fireEvent("user-registered", {
      username,
      host,
      source: "register",
      session: origin,
    });
    origin.send(stanza.reply());
    return true;
  });

  // Logged in: registration info, password change, account removal.
  async function loggedIn({ origin, stanza }: StanzaEvent<Session>) {
    const me = origin.username!;
    if (stanza.attrs.type === "get") {
      origin.send(
        stanza.reply().tag("query", { xmlns: NS }).tag("registered").up().textTag("username", me),
      );
      return true;
    }
    const { remove, username, password } = fields(stanza);
    if (remove) {
      origin.send(stanza.reply());
      const sessions = [...module.resources(me)];
      await users().deleteUser(me);
      for (const s of sessions) s.close({ condition: "not-authorized", text: "Account removed" });
      return true;
    }
    if (username !== me || !password) {
      origin.send(stanza.errorReply("modify", "bad-request", "Your username and a new password"));
      return true;
    }
    await users().setPassword(me, password);
    origin.send(stanza.reply());
    return true;
  }
  module.hook(`iq/self/${NS}:query`, loggedIn);
  module.hook(`iq/host/${NS}:query`, loggedIn);
}
