/**
 * The personal profile in PEP with an independent client (Debian's
 * python3-slixmpp: xep_0084, xep_0172, xep_0054, xep_0048, xep_0060,
 * xep_0163, xep_0115): an avatar and a nickname reach a contact who shows
 * interest through his caps; vcard-temp shows the PEP avatar and a legacy
 * vCard's nickname shows in the vCard4; XEP-0402 bookmarks and XEP-0048's
 * private storage see the same rooms; a contact cannot publish to another's
 * node, and an item over pep_max_item_size is refused.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { startTestServer } from "../helpers/server.ts";
import { slixmppReady } from "../helpers/slixmpp.ts";

const SCRIPT = fileURLToPath(new URL("./slixmpp_profile.py", import.meta.url));

/** The avatar the script publishes, and so its id (SHA-1, XEP-0084 §4.2). */
const AVATAR = new Uint8Array([
  ...[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
  ...Array.from({ length: 56 }, (_, i) => i),
]);
const AVATAR_ID = createHash("sha1").update(AVATAR).digest("hex");

Deno.test("slixmpp: avatar, nickname, vCard conversions and bookmarks in PEP between contacts", async () => {
  if (!await slixmppReady()) return;
  const t = await startTestServer({ pep_max_item_size: 4096 });
  try {
    for (const user of ["alice", "bob"]) {
      await t.server.users("localhost")!.createUser(user, `${user} pw`);
    }
    for (const [user, contact] of [["alice", "bob"], ["bob", "alice"]]) {
      await t.server.rosters.modify(user, "localhost", (r) => {
        r.items.set(`${contact}@localhost`, { subscription: "both", groups: [] });
        return [`${contact}@localhost`];
      });
    }
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [SCRIPT, String(t.port)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    // XEP-0084: the metadata notification, then the data by id.
    assert.match(text, new RegExp(`^METADATA ${AVATAR_ID} ${AVATAR_ID} image/png 64$`, "m"), text);
    assert.match(text, new RegExp(`^AVATAR ${AVATAR_ID} 64 True$`, "m"), text);
    // XEP-0172, published directly and through the legacy vCard's NICKNAME.
    assert.match(text, /^NICK current Alice$/m, text);
    assert.match(text, /^NICK current Ally$/m, text);
    // vcard-temp ⇄ PEP.
    assert.match(text, /^VCARD-PHOTO image\/png True$/m, text);
    assert.match(text, /^VCARD4 Alice Liddell \/ Ally$/m, text);
    // XEP-0402 ⇄ XEP-0048.
    assert.match(text, /^LEGACY club@conference\.localhost Club True al$/m, text);
    assert.match(
      text,
      /^PEP-BOOKMARK club@conference\.localhost <conference xmlns="urn:xmpp:bookmarks:1" name="Club" autojoin="true"><nick>al<\/nick><\/conference>$/m,
      text,
    );
    assert.match(
      text,
      /^PEP-BOOKMARK lounge@conference\.localhost <conference xmlns="urn:xmpp:bookmarks:1" name="Lounge"><nick>ally<\/nick><\/conference>$/m,
      text,
    );
    // Refusals (XEP-0060 §6.5.9, §7.1.3.1, §7.1.3.6); nothing changed by them.
    // (The error type is not normative there; XEP-0060's examples use "cancel".)
    assert.match(text, /^BOB-BOOKMARKS (cancel|auth) not-allowed closed-node$/m, text);
    assert.match(text, /^FOREIGN-PUBLISH auth forbidden -$/m, text);
    assert.match(text, /^TOO-BIG modify not-acceptable payload-too-big$/m, text);
    assert.match(text, /^NICK-NOW current Ally$/m, text);
    assert.match(text, /^DATA-NOTIFICATIONS 0$/m, text);
    assert.match(text, /^DONE$/m, text);
    assert.equal(out.code, 0, text);
  } finally {
    await t.stop();
  }
});
