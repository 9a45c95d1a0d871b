/**
 * The MUC component (XEP-0045) with npm:@xmpp/client: creating rooms
 * (locked until configured), joining in the XEP's order, messages with the
 * room's stanza-id and occupant-id, history, subject, nicknames, private
 * messages, roles and affiliations with their notifications, the join
 * errors, configuration, registration, invitations, destruction, and a
 * persistent room with its archive across a restart.
 */
import assert from "node:assert/strict";
import { startTestServer } from "../helpers/server.ts";
import { connectXmpp, type TestXmpp, type XmlElement } from "../helpers/xmppclient.ts";
import {
  ADMIN,
  codes,
  errorOf,
  groupchat,
  instantRoom,
  iq,
  item,
  join,
  MUC,
  OPTIONS,
  OWNER,
  ROOM,
  SERVICE,
  subjectFrom,
  submit,
  USER,
  withMuc,
} from "../helpers/muc.ts";

let seq = 0;

Deno.test("muc: an instant room; joining in order; messages with stanza-id and occupant-id; history and subject", async () => {
  await withMuc(async (login) => {
    const alice = await login("alice");
    const bob = await login("bob");
    const carol = await login("carol");
    // A new room is locked until its owner configures it.
    const self = await join(alice, "alice");
    assert.equal(codes(self), "110 201");
    assert.equal((await subjectFrom(alice)).getChildText("subject"), ""); // always a subject
    assert.equal(errorOf(await join(bob, "bob")), "item-not-found");
    assert.equal((await iq(alice, ROOM, "set", submit({}))).attrs.type, "result");

    // Bob joins: alice's presence first, then his own (110), then the (empty) subject.
    bob.received.length = 0;
    await join(bob, "bob");
    const subject = await subjectFrom(bob);
    assert.equal(subject.getChildText("subject"), "");
    const order = [...bob.received.map((s: XmlElement) => s.attrs.from)];
    assert.deepEqual(order, [`${ROOM}/alice`]); // (the self-presence and subject were taken)
    const seen = await alice.waitFor((s) => s.is("presence") && s.attrs.from === `${ROOM}/bob`);
    assert.equal(item(seen).jid, bob.jid); // alice is a moderator: she sees real JIDs
    assert.equal(item(seen).role, "participant");
    const aliceSeen = bob.received.find((s: XmlElement) => s.attrs.from === `${ROOM}/alice`);
    assert.equal(item(aliceSeen).jid, undefined, "bob is no moderator: no real JIDs");
    assert.ok(aliceSeen.getChild("occupant-id", "urn:xmpp:occupant-id:0")?.attrs.id);

    // A message goes to everyone, with the room's stanza-id and the sender's occupant-id.
    alice.xmpp.write(
      `<message to='${ROOM}' type='groupchat' id='g1'><body>one</body>` +
        `<stanza-id xmlns='urn:xmpp:sid:0' by='${ROOM}' id='forged'/></message>`,
    );
    const atBob = await groupchat(bob, "one");
    const echo = await groupchat(alice, "one");
    assert.equal(atBob.attrs.from, `${ROOM}/alice`);
    assert.equal(echo.attrs.id, "g1");
    const ids = atBob.getChildren("stanza-id", "urn:xmpp:sid:0");
    assert.equal(ids.length, 1);
    assert.notEqual(ids[0].attrs.id, "forged");
    assert.equal(ids[0].attrs.by, ROOM);
    assert.equal(
      atBob.getChild("occupant-id", "urn:xmpp:occupant-id:0").attrs.id,
      aliceSeen.getChild("occupant-id", "urn:xmpp:occupant-id:0").attrs.id,
    );
    alice.xmpp.write(`<message to='${ROOM}' type='groupchat'><body>two</body></message>`);
    alice.xmpp.write(`<message to='${ROOM}' type='groupchat'><body>three</body></message>`);
    await groupchat(bob, "three");
    // Only moderators change the subject by default.
    bob.xmpp.write(
      `<message to='${ROOM}' type='groupchat' id='s1'><subject>mine</subject></message>`,
    );
    const refused = await bob.waitFor((s) => s.is("message") && s.attrs.type === "error");
    assert.equal(errorOf(refused), "forbidden");
    alice.xmpp.write(
      `<message to='${ROOM}' type='groupchat'><subject>Club news</subject></message>`,
    );
    assert.equal((await subjectFrom(bob)).getChildText("subject"), "Club news");

    // Carol asks for two messages of history: two, stamped, then the subject.
    carol.received.length = 0;
    await join(carol, "carol", `<x xmlns='${MUC}'><history maxstanzas='2'/></x>`);
    const subj = await subjectFrom(carol);
    assert.equal(subj.getChildText("subject"), "Club news");
    const history = carol.received.filter((s: XmlElement) => s.is("message"));
    assert.deepEqual(history.map((m: XmlElement) => m.getChildText("body")), ["two", "three"]);
    for (const h of history) {
      assert.ok(h.getChild("delay", "urn:xmpp:delay")?.attrs.stamp);
      assert.equal(h.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs.by, ROOM);
    }
  });
});

Deno.test("muc: join errors — invalid nick, nick in use, wrong password, banned, members-only — change nothing", async () => {
  await withMuc(async (login) => {
    const alice = await login("alice");
    const bob = await login("bob");
    const carol = await login("carol");
    await instantRoom(alice, { passwordprotectedroom: "1", roomsecret: "secret" });
    assert.equal(errorOf(await join(bob, " ")), "jid-malformed");
    assert.equal(
      errorOf(await join(bob, "alice", `<x xmlns='${MUC}'><password>secret</password></x>`)),
      "conflict",
    );
    assert.equal(errorOf(await join(bob, "bob")), "not-authorized");
    assert.equal(
      errorOf(await join(bob, "bob", `<x xmlns='${MUC}'><password>nope</password></x>`)),
      "not-authorized",
    );
    const ok = await join(bob, "bob", `<x xmlns='${MUC}'><password>secret</password></x>`);
    assert.equal(ok.attrs.type, undefined);
    // Banned: removed with 301, and cannot come back.
    assert.equal(
      (await iq(
        alice,
        ROOM,
        "set",
        `<query xmlns='${ADMIN}'><item jid='bob@localhost' affiliation='outcast'><reason>spam</reason></item></query>`,
      )).attrs.type,
      "result",
    );
    const gone = await bob.waitFor((s) => s.is("presence") && s.attrs.type === "unavailable");
    assert.equal(codes(gone), "110 301");
    assert.equal(gone.getChild("x", USER).getChild("item").getChildText("reason"), "spam");
    assert.equal(
      errorOf(await join(bob, "bob", `<x xmlns='${MUC}'><password>secret</password></x>`)),
      "forbidden",
    );
    // Members-only: carol is not a member.
    assert.equal(
      (await iq(alice, ROOM, "set", submit({ membersonly: "1", passwordprotectedroom: "0" }))).attrs
        .type,
      "result",
    );
    assert.equal(errorOf(await join(carol, "carol")), "registration-required");
    // A configuration form with a wrong type changes nothing.
    const bad = await iq(alice, ROOM, "set", submit({ maxusers: "lots", membersonly: "0" }));
    assert.equal(errorOf(bad), "not-acceptable");
    assert.equal(errorOf(await join(carol, "carol")), "registration-required");
    // The occupants are still there, alice alone.
    const roles = await iq(
      alice,
      ROOM,
      "get",
      `<query xmlns='${ADMIN}'><item role='moderator'/></query>`,
    );
    assert.deepEqual(
      roles.getChild("query").getChildren("item").map((i: XmlElement) => i.attrs.nick),
      ["alice"],
    );
  });
});

Deno.test("muc: nick change (303), private messages, kick (307), voice in a moderated room, members-only removes non-members (322)", async () => {
  await withMuc(async (login) => {
    const alice = await login("alice");
    const bob = await login("bob");
    const carol = await login("carol");
    await instantRoom(alice);
    await join(bob, "bob");
    await join(carol, "carol");
    // Nick change: conflict, then 303 and the new presence.
    assert.equal(errorOf(await join(bob, "carol")), "conflict");
    bob.xmpp.write(`<presence to='${ROOM}/robert'/>`);
    const left = await carol.waitFor((s) =>
      s.attrs.from === `${ROOM}/bob` && s.attrs.type === "unavailable"
    );
    assert.equal(codes(left), "303");
    assert.equal(item(left).nick, "robert");
    await carol.waitFor((s) => s.is("presence") && s.attrs.from === `${ROOM}/robert`);
    // A private message, from the occupant JID.
    bob.xmpp.write(`<message to='${ROOM}/carol' type='chat'><body>psst</body></message>`);
    const pm = await carol.waitFor((s) => s.is("message") && s.getChildText("body") === "psst");
    assert.equal(pm.attrs.from, `${ROOM}/robert`);
    assert.ok(pm.getChild("x", USER));
    // A moderator makes the room moderated: non-members become visitors and cannot speak.
    await iq(alice, ROOM, "set", submit({ moderatedroom: "1" }));
    const muted = await carol.waitFor((s) =>
      s.attrs.from === `${ROOM}/carol` && item(s).role === "visitor"
    );
    assert.ok(codes(muted).includes("110"));
    carol.xmpp.write(`<message to='${ROOM}' type='groupchat'><body>hello?</body></message>`);
    assert.equal(
      errorOf(await carol.waitFor((s) => s.is("message") && s.attrs.type === "error")),
      "forbidden",
    );
    // Bob is not a moderator: he cannot give voice.
    const notMod = await iq(
      bob,
      ROOM,
      "set",
      `<query xmlns='${ADMIN}'><item nick='carol' role='participant'/></query>`,
    );
    assert.equal(errorOf(notMod), "forbidden");
    await iq(
      alice,
      ROOM,
      "set",
      `<query xmlns='${ADMIN}'><item nick='carol' role='participant'/></query>`,
    );
    await carol.waitFor((s) => s.attrs.from === `${ROOM}/carol` && item(s).role === "participant");
    // Kick.
    await iq(
      alice,
      ROOM,
      "set",
      `<query xmlns='${ADMIN}'><item nick='carol' role='none'><reason>bye</reason></item></query>`,
    );
    const kicked = await carol.waitFor((s) =>
      s.attrs.type === "unavailable" && s.attrs.from === `${ROOM}/carol`
    );
    assert.equal(codes(kicked), "110 307");
    assert.equal(
      kicked.getChild("x", USER).getChild("item").getChild("actor")?.attrs.nick,
      "alice",
    );
    // The last owner stays.
    const lastOwner = await iq(
      alice,
      ROOM,
      "set",
      `<query xmlns='${ADMIN}'><item jid='alice@localhost' affiliation='admin'/></query>`,
    );
    assert.equal(errorOf(lastOwner), "conflict");
    // Members-only: bob (no affiliation) is removed with 322.
    await iq(alice, ROOM, "set", submit({ membersonly: "1" }));
    const out = await bob.waitFor((s) =>
      s.attrs.type === "unavailable" && s.attrs.from === `${ROOM}/robert`
    );
    assert.equal(codes(out), "110 322");
  });
});

Deno.test("muc: registration, invitations, self-ping, disco, destruction with a venue", async () => {
  await withMuc(async (login) => {
    const alice = await login("alice");
    const bob = await login("bob");
    const carol = await login("carol");
    await instantRoom(alice, { membersonly: "1", roomname: "The Club" });
    // Disco: the room says what it is.
    const info = await iq(
      bob,
      ROOM,
      "get",
      "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    );
    const features = info.getChild("query").getChildren("feature").map((f: XmlElement) =>
      f.attrs.var
    );
    for (
      const f of ["muc_membersonly", "muc_temporary", "urn:xmpp:occupant-id:0", "urn:xmpp:mam:2"]
    ) {
      assert.ok(features.includes(f), f);
    }
    assert.equal(info.getChild("query").getChild("identity").attrs.name, "The Club");
    // An invitation to a members-only room makes bob a member.
    alice.xmpp.write(
      `<message to='${ROOM}'><x xmlns='${USER}'><invite to='bob@localhost'><reason>come</reason></invite></x></message>`,
    );
    const inv = await bob.waitFor((s) =>
      s.is("message") && s.getChild("x", USER)?.getChild("invite")
    );
    assert.equal(inv.attrs.from, ROOM);
    assert.equal(inv.getChild("x", USER).getChild("invite").attrs.from, alice.jid);
    await join(bob, "bob");
    // Carol declines an invitation she never had: alice is told anyway, as the XEP routes it.
    carol.xmpp.write(
      `<message to='${ROOM}'><x xmlns='${USER}'><decline to='alice@localhost'><reason>busy</reason></decline></x></message>`,
    );
    const dec = await alice.waitFor((s) =>
      s.is("message") && s.getChild("x", USER)?.getChild("decline")
    );
    assert.equal(dec.getChild("x", USER).getChild("decline").attrs.from, "carol@localhost");
    // Registration: bob reserves a nickname; carol cannot take it.
    const form = await iq(bob, ROOM, "get", "<query xmlns='jabber:iq:register'/>");
    assert.ok(form.getChild("query").getChild("x", "jabber:x:data"));
    const reg = (nick: string) =>
      `<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>` +
      `<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>` +
      `<field var='muc#register_roomnick'><value>${nick}</value></field></x></query>`;
    assert.equal((await iq(bob, ROOM, "set", reg("bobby"))).attrs.type, "result");
    assert.equal(errorOf(await iq(alice, ROOM, "set", reg("bobby"))), "conflict");
    const mine = await iq(
      bob,
      ROOM,
      "get",
      "<query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/>",
    );
    assert.equal(mine.getChild("query").getChild("identity").attrs.name, "bobby");
    // Self-ping: in the room under this nick; not under another.
    assert.equal(
      (await iq(bob, `${ROOM}/bob`, "get", "<ping xmlns='urn:xmpp:ping'/>")).attrs.type,
      "result",
    );
    assert.equal(
      errorOf(await iq(carol, `${ROOM}/bob`, "get", "<ping xmlns='urn:xmpp:ping'/>")),
      "not-acceptable",
    );
    // Destruction: occupants learn where to go.
    const destroyed = await iq(
      alice,
      ROOM,
      "set",
      `<query xmlns='${OWNER}'><destroy jid='new@${SERVICE}'><reason>moved</reason></destroy></query>`,
    );
    assert.equal(destroyed.attrs.type, "result");
    const gone = await bob.waitFor((s) =>
      s.attrs.type === "unavailable" && s.attrs.from === `${ROOM}/bob`
    );
    const d = gone.getChild("x", USER).getChild("destroy");
    assert.equal(d.attrs.jid, `new@${SERVICE}`);
    assert.equal(d.getChildText("reason"), "moved");
    const after = await iq(
      bob,
      ROOM,
      "get",
      "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    );
    assert.equal(errorOf(after), "item-not-found");
  });
});

Deno.test("muc: a persistent room keeps its configuration, affiliations, subject and archive across a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cadence-muc-" });
  try {
    await withMuc(async (login) => {
      const alice = await login("alice");
      await instantRoom(alice, { persistentroom: "1", roomname: "Kept", membersonly: "1" });
      await iq(
        alice,
        ROOM,
        "set",
        `<query xmlns='${ADMIN}'><item jid='bob@localhost' affiliation='member'/></query>`,
      );
      alice.xmpp.write(
        `<message to='${ROOM}' type='groupchat'><subject>Kept subject</subject></message>`,
      );
      alice.xmpp.write(`<message to='${ROOM}' type='groupchat'><body>remember me</body></message>`);
      await groupchat(alice, "remember me");
    }, dir);
    await withMuc(async (login) => {
      const bob = await login("bob");
      const carol = await login("carol");
      assert.equal(errorOf(await join(carol, "carol")), "registration-required");
      await join(bob, "bob");
      assert.equal((await subjectFrom(bob)).getChildText("subject"), "Kept subject");
      const h = bob.received.find((s: XmlElement) => s.getChildText?.("body") === "remember me");
      assert.ok(h, "history from the archive");
      // The archive, queried on the room's JID.
      const id = `q${++seq}`;
      bob.xmpp.write(
        `<iq type='set' id='${id}' to='${ROOM}'><query xmlns='urn:xmpp:mam:2' queryid='x'/></iq>`,
      );
      const result = await bob.waitFor((s) =>
        s.is("message") && s.getChild("result", "urn:xmpp:mam:2")
      );
      const fwd = result.getChild("result", "urn:xmpp:mam:2").getChild(
        "forwarded",
        "urn:xmpp:forward:0",
      );
      assert.equal(fwd.getChild("message").getChildText("body"), "remember me");
      assert.equal(fwd.getChild("message").attrs.from, `${ROOM}/alice`);
      const fin = await bob.waitFor((s) => s.is("iq") && s.attrs.id === id);
      assert.equal(fin.getChild("fin", "urn:xmpp:mam:2").attrs.complete, "true");
      assert.equal(
        h.getChild("stanza-id", "urn:xmpp:sid:0").attrs.id,
        result.getChild("result", "urn:xmpp:mam:2").attrs.id,
      );
      // Non-members may not read a members-only room's archive.
      const denied = await iq(carol, ROOM, "set", "<query xmlns='urn:xmpp:mam:2'/>");
      assert.equal(errorOf(denied), "forbidden");
    }, dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("muc: owners cannot kick admins; at shutdown occupants are told (332)", async () => {
  const t = await startTestServer(OPTIONS);
  const clients: TestXmpp[] = [];
  try {
    for (const u of ["alice", "bob"]) {
      await t.server.users("localhost")!.createUser(u, "pw");
      const c = await connectXmpp(t.port, u, "pw", "r");
      c.xmpp.write("<presence/>");
      clients.push(c);
    }
    const [alice, bob] = clients;
    await instantRoom(alice);
    await iq(
      alice,
      ROOM,
      "set",
      `<query xmlns='${ADMIN}'><item jid='bob@localhost' affiliation='admin'/></query>`,
    );
    await join(bob, "bob");
    const kick = await iq(
      alice,
      ROOM,
      "set",
      `<query xmlns='${ADMIN}'><item nick='bob' role='none'/></query>`,
    );
    assert.equal(errorOf(kick), "not-allowed");
    const stopping = t.stop();
    const gone = await bob.waitFor((s) =>
      s.attrs.type === "unavailable" && s.attrs.from === `${ROOM}/bob`
    );
    assert.equal(codes(gone), "110 332");
    await stopping;
  } finally {
    for (const c of clients) await c.stop();
  }
});

Deno.test("muc: restrict_room_creation; public and hidden rooms in disco; whois anyone (100); probes; history since", async () => {
  const options = {
    components: { [SERVICE]: { module: "muc", restrict_room_creation: "admin" } },
    admins: ["alice@localhost"],
  };
  await withMuc(
    async (login) => {
      const alice = await login("alice");
      const bob = await login("bob");
      // Only admins create rooms.
      const refused = await join(bob, "bob", `<x xmlns='${MUC}'/>`, `bobs@${SERVICE}`);
      assert.equal(errorOf(refused), "not-allowed");
      await instantRoom(alice, { whois: "anyone", roomname: "Open club" });
      const self = await join(alice, "alice", undefined, `hidden@${SERVICE}`);
      assert.equal(codes(self), "110 201");
      await iq(alice, `hidden@${SERVICE}`, "set", submit({ publicroom: "0" }));
      // The directory lists the public room only.
      const items = await iq(
        bob,
        SERVICE,
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#items'/>",
      );
      const listed = items.getChild("query").getChildren("item").map((i: XmlElement) =>
        i.attrs.jid
      );
      assert.deepEqual(listed, [ROOM]);
      // Non-anonymous: bob sees real JIDs, and is told so (100).
      const mine = await join(
        bob,
        "bob",
        `<x xmlns='${MUC}'><history since='2999-01-01T00:00:00Z'/></x>`,
      );
      assert.equal(codes(mine), "100 110");
      assert.equal(
        bob.received.find((s: XmlElement) => s.attrs.from === `${ROOM}/alice`)?.getChild("x", USER)
          ?.getChild("item")?.attrs.jid,
        alice.jid,
      );
      await subjectFrom(bob);
      assert.equal(
        bob.received.filter((s: XmlElement) => s.is("message")).length,
        0,
        "no history after since",
      );
      // A probe brings an occupant's current presence.
      bob.received.length = 0;
      bob.xmpp.write(`<presence to='${ROOM}/alice' type='probe'/>`);
      const probed = await bob.waitFor((s) => s.is("presence") && s.attrs.from === `${ROOM}/alice`);
      assert.equal(item(probed).affiliation, "owner");
    },
    undefined,
    options,
  );
});

Deno.test("muc: a wrong restrict_room_creation is a clear configuration error", async () => {
  await assert.rejects(
    startTestServer({
      components: { [SERVICE]: { module: "muc", restrict_room_creation: "maybe" } },
    }),
    /restrict_room_creation/,
  );
});

Deno.test("muc: one account in a room from two clients under one nick; one leaves, the room sees the other", async () => {
  await withMuc(async (login) => {
    const alice = await login("alice");
    const bob = await login("bob");
    const phone = await login("bob", "phone");
    await instantRoom(alice);
    await join(bob, "bob", `<x xmlns='${MUC}'/><show>away</show>`);
    await join(phone, "bob", `<x xmlns='${MUC}'/><show>dnd</show>`);
    // Both clients get the room's messages.
    alice.xmpp.write(`<message to='${ROOM}' type='groupchat'><body>both</body></message>`);
    await groupchat(bob, "both");
    await groupchat(phone, "both");
    // The phone's presence is the occupant's now; when it leaves, alice sees the desktop's.
    await alice.waitFor((s) => s.attrs.from === `${ROOM}/bob` && s.getChildText("show") === "dnd");
    phone.xmpp.write(`<presence to='${ROOM}/bob' type='unavailable'/>`);
    const left = await phone.waitFor((s) =>
      s.attrs.from === `${ROOM}/bob` && s.attrs.type === "unavailable"
    );
    assert.equal(codes(left), "110");
    const now = await alice.waitFor((s) =>
      s.attrs.from === `${ROOM}/bob` && s.attrs.type === undefined &&
      s.getChildText("show") === "away"
    );
    assert.equal(item(now).role, "participant");
    // Bob is still in the room (his desktop).
    alice.xmpp.write(`<message to='${ROOM}' type='groupchat'><body>still</body></message>`);
    await groupchat(bob, "still");
  });
});

Deno.test("muc: one account owns at most muc_max_rooms_per_owner rooms; the refusal changes nothing", async () => {
  const options = { components: { [SERVICE]: { module: "muc", muc_max_rooms_per_owner: 2 } } };
  await withMuc(
    async (login) => {
      const bob = await login("bob");
      for (const name of ["one", "two"]) {
        const self = await join(bob, "bob", undefined, `${name}@${SERVICE}`);
        assert.equal(codes(self), "110 201");
      }
      const third = await join(bob, "bob", undefined, `three@${SERVICE}`);
      assert.equal(errorOf(third), "resource-constraint");
      const info = await iq(
        bob,
        `three@${SERVICE}`,
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
      );
      assert.equal(errorOf(info), "item-not-found");
    },
    undefined,
    options,
  );
});

Deno.test("muc: a visitor asks for voice; a moderator's approval gives it (XEP-0045 §7.13, §8.6)", async () => {
  await withMuc(async (login) => {
    const alice = await login("alice");
    const carol = await login("carol");
    await instantRoom(alice, { moderatedroom: "1" });
    const self = await join(carol, "carol");
    assert.equal(item(self).role, "visitor");
    const REQUEST = `${MUC}#request`;
    carol.xmpp.write(
      `<message to='${ROOM}'><x xmlns='jabber:x:data' type='submit'>` +
        `<field var='FORM_TYPE'><value>${REQUEST}</value></field>` +
        `<field var='muc#role'><value>participant</value></field></x></message>`,
    );
    const request = await alice.waitFor((s) =>
      s.is("message") && s.getChild("x", "jabber:x:data")?.attrs.type === "form"
    );
    const fields = Object.fromEntries(
      request.getChild("x", "jabber:x:data").getChildren("field").map((f: XmlElement) => [
        f.attrs.var,
        f.getChildText("value"),
      ]),
    );
    assert.equal(fields.FORM_TYPE, REQUEST);
    assert.equal(fields["muc#roomnick"], "carol");
    assert.equal(fields["muc#jid"], carol.jid);
    alice.xmpp.write(
      `<message to='${ROOM}'><x xmlns='jabber:x:data' type='submit'>` +
        `<field var='FORM_TYPE'><value>${REQUEST}</value></field>` +
        `<field var='muc#role'><value>participant</value></field>` +
        `<field var='muc#roomnick'><value>carol</value></field>` +
        `<field var='muc#request_allow'><value>true</value></field></x></message>`,
    );
    await carol.waitFor((s) => s.attrs.from === `${ROOM}/carol` && item(s).role === "participant");
    carol.xmpp.write(`<message to='${ROOM}' type='groupchat'><body>thanks</body></message>`);
    await groupchat(alice, "thanks");
  });
});

Deno.test("muc: a user who blocks an occupant (or the room) gets none of its messages", async () => {
  await withMuc(async (login) => {
    const alice = await login("alice");
    const bob = await login("bob");
    await instantRoom(alice);
    await join(bob, "bob");
    const block = await iq(
      bob,
      "",
      "set",
      `<block xmlns='urn:xmpp:blocking'><item jid='${ROOM}/alice'/></block>`,
    );
    assert.equal(block.attrs.type, "result");
    alice.xmpp.write(`<message to='${ROOM}' type='groupchat'><body>blocked</body></message>`);
    await groupchat(alice, "blocked"); // (alice's echo: the message went out)
    bob.xmpp.write(`<message to='${ROOM}' type='groupchat'><body>marker</body></message>`);
    await groupchat(bob, "marker");
    assert.ok(!bob.received.some((s: XmlElement) => s.getChildText?.("body") === "blocked"));
  });
});

Deno.test("muc: a room without its archive keeps its last messages in memory for history", async () => {
  const options = { components: { [SERVICE]: { module: "muc", muc_log_by_default: false } } };
  await withMuc(
    async (login) => {
      const alice = await login("alice");
      const bob = await login("bob");
      await instantRoom(alice, { historylength: "2" });
      for (const body of ["one", "two", "three"]) {
        alice.xmpp.write(`<message to='${ROOM}' type='groupchat'><body>${body}</body></message>`);
        await groupchat(alice, body);
      }
      bob.received.length = 0;
      await join(bob, "bob");
      await subjectFrom(bob);
      const history = bob.received.filter((s: XmlElement) => s.is("message"));
      assert.deepEqual(history.map((m: XmlElement) => m.getChildText("body")), ["two", "three"]);
      for (const h of history) {
        assert.match(h.getChild("delay", "urn:xmpp:delay")?.attrs.stamp ?? "", /^\d{4}-\d\d-\d\dT/);
      }
    },
    undefined,
    options,
  );
});
