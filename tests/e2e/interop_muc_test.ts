/**
 * The MUC component with an independent client (Debian's python3-slixmpp,
 * xep_0045 + xep_0004/xep_0030/xep_0249): alice creates and configures a
 * password-protected room, bob and carol join, leave, are kicked, banned and
 * removed, the history and the subject are replayed, the room is destroyed.
 * The expected lines are what Debian's Prosody 0.12.3 (mod_muc) answers to
 * the same script; where Prosody strays from XEP-0045 the test says so.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startTestServer } from "../helpers/server.ts";
import { slixmppReady } from "../helpers/slixmpp.ts";

const SCRIPT = fileURLToPath(new URL("./slixmpp_muc.py", import.meta.url));
const MUC = "conference.localhost";

Deno.test("slixmpp creates, configures, joins, moderates and destroys a room on the MUC component", async () => {
  if (!await slixmppReady()) return;
  const t = await startTestServer({
    components: { [MUC]: { module: "muc" } },
  });
  try {
    for (const user of ["alice", "bob", "carol"]) {
      await t.server.users("localhost")!.createUser(user, `${user} pw`);
    }
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [SCRIPT, String(t.port), MUC],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    // Creation: a new room, its creator the owner, locked until configured.
    assert.match(text, /^JOINED 110 201$/m, text);
    assert.match(text, /^CREATOR owner moderator$/m, text);
    assert.match(text, /^ERROR locked cancel item-not-found$/m, text);
    assert.match(text, /^FIELD muc#roomconfig_membersonly yes$/m, text);
    assert.match(text, /^FIELD muc#roomconfig_roomsecret yes$/m, text);
    assert.match(text, /^FIELD muc#roomconfig_persistentroom yes$/m, text);
    assert.match(text, /^CONFIGURED result$/m, text);
    // The password.
    assert.match(text, /^ERROR wrong-password auth not-authorized$/m, text);
    assert.match(text, /^ERROR no-password auth not-authorized$/m, text);
    // Joining: the occupants first, one's own presence (110) last, then the
    // (empty) subject.
    assert.match(
      text,
      /^OCCUPANT alice owner moderator\nSELF bob none participant 110\nSELF-LAST yes$/m,
      text,
    );
    assert.match(text, /^EMPTY-SUBJECT \S+ ''$/m, text); // Prosody: from the room's bare JID
    assert.match(text, /^ALICE-SEES bob participant bob@localhost$/m, text); // moderators see real JIDs
    assert.match(text, /^SUBJECT alice Welcome$/m, text);
    assert.match(text, /^MSG alice hello$/m, text);
    assert.match(text, /^ECHO alice hello$/m, text);
    // Nick changes.
    assert.match(text, /^ERROR nick-in-use cancel conflict$/m, text);
    assert.match(text, /^NICK-OLD bob 110 303 robert$/m, text);
    assert.match(text, /^NICK-NEW robert 110$/m, text);
    assert.match(text, /^ALICE-NICK bob 303 robert$/m, text);
    // A private message, a direct invitation (XEP-0249).
    assert.match(text, /^PM club@conference\.localhost\/robert chat psst$/m, text);
    assert.match(text, /^INVITE alice@localhost club@conference\.localhost secret come$/m, text);
    // Nicks that are no resourceprep'd resource: an error from the server.
    assert.match(text, /^ERROR empty-nick modify jid-malformed$/m, text);
    assert.match(text, /^ERROR control-nick modify jid-malformed$/m, text);
    assert.match(text, /^CAROL carol none participant 110$/m, text);
    // Kick, ban.
    assert.match(text, /^KICK result$/m, text);
    assert.match(text, /^KICKED 110 307 none$/m, text);
    assert.match(text, /^CAROL-BACK carol participant$/m, text);
    assert.match(text, /^BAN result$/m, text);
    assert.match(text, /^BANNED 110 301 outcast none$/m, text);
    assert.match(text, /^ERROR banned auth forbidden$/m, text);
    // Members-only: the non-member is removed with 322. (XEP-0045 also wants
    // the 322 sent to the remaining occupants; Prosody 0.12 sends them nothing,
    // so ALICE-REMOVED is printed but not asserted.)
    assert.match(text, /^MEMBERS-ONLY result$/m, text);
    assert.match(text, /^REMOVED 110 322 none$/m, text);
    assert.match(text, /^UNBAN result$/m, text);
    assert.match(text, /^ERROR members-only auth registration-required$/m, text);
    // History: exactly the last two messages, delayed by the room, then the subject.
    assert.match(text, /^MEMBER result$/m, text);
    assert.match(text, /^BACK bob member participant$/m, text);
    assert.match(
      text,
      /^HISTORY alice second stamped club@conference\.localhost\nHISTORY alice third stamped club@conference\.localhost\nHISTORY-SUBJECT alice Welcome$/m,
      text,
    );
    // A value of the wrong type: Prosody 0.12 ignores it and answers a result
    // (its process_form has "FIXME handle form errors"); an error is as good.
    // Either way the value is not taken.
    assert.match(
      text,
      /^BAD-FORM (result|error (modify|cancel) (bad-request|not-acceptable))$/m,
      text,
    );
    assert.match(text, /^AFTER-BAD-FORM muc#roomconfig_historylength \d+$/m, text);
    // Destruction, with an alternate venue and a reason.
    assert.match(text, /^DESTROY result$/m, text);
    assert.match(text, /^DESTROYED bob 110 lounge@conference\.localhost moving$/m, text);
    assert.match(text, /^DESTROYED alice 110 lounge@conference\.localhost moving$/m, text);
    assert.match(text, /^DONE$/m, text);
    assert.equal(out.code, 0, text);
  } finally {
    await t.stop();
  }
});
