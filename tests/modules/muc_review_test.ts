/**
 * Review of the MUC component: regressions for the protocol, permission and
 * robustness bugs found in review (registration as a way into a
 * members-only room, iqs to occupants holding the sender's stream, empty
 * temporary rooms that never go away, invitations past the affiliation
 * limit, promises nobody waits for).
 */
import assert from "node:assert/strict";
import {
  ADMIN,
  codes,
  errorOf,
  groupchat,
  instantRoom,
  iq,
  item,
  join,
  ROOM,
  SERVICE,
  USER,
  withMuc,
} from "../helpers/muc.ts";

let seq = 0;
import type { Module } from "../../core/moduleapi.ts";
import type { Origin, StanzaEvent } from "../../core/router.ts";
import { element, type Stanza } from "../../core/xml/stanza.ts";
import {
  MAX_AFFILIATIONS,
  newRoom,
  type Occupant,
  type Room,
  type RoomConfig,
} from "../../modules/muc/room.ts";
import type { Service } from "../../modules/muc/service.ts";
import { onRoomMessage } from "../../modules/muc/messages.ts";
import { onOccupantPresence } from "../../modules/muc/occupants.ts";

const register = (nick: string) =>
  `<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>` +
  `<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>` +
  `<field var='muc#register_roomnick'><value>${nick}</value></field></x></query>`;

Deno.test("muc review: registering a nickname is no way into a members-only (or moderated) room", async () => {
  await withMuc(async (login) => {
    const alice = await login("alice");
    const carol = await login("carol");
    await instantRoom(alice, { membersonly: "1" });
    // Carol has no affiliation: as Prosody (allow_unaffiliated_register = false), she is refused.
    const reg = await iq(carol, ROOM, "set", register("carol"));
    assert.equal(errorOf(reg), "registration-required");
    assert.equal(errorOf(await join(carol, "carol")), "registration-required");
    const members = await iq(
      alice,
      ROOM,
      "get",
      `<query xmlns='${ADMIN}'><item affiliation='member'/></query>`,
    );
    assert.equal(members.getChild("query").getChildren("item").length, 0);
  });
});

Deno.test("muc review: a member who removes the registration loses a members-only room (321)", async () => {
  await withMuc(async (login) => {
    const alice = await login("alice");
    const bob = await login("bob");
    await instantRoom(alice, { membersonly: "1" });
    await iq(
      alice,
      ROOM,
      "set",
      `<query xmlns='${ADMIN}'><item jid='bob@localhost' affiliation='member'/></query>`,
    );
    assert.equal((await join(bob, "bob")).attrs.type, undefined);
    assert.equal((await iq(bob, ROOM, "set", register("bob"))).attrs.type, "result");
    const removed = await iq(
      bob,
      ROOM,
      "set",
      "<query xmlns='jabber:iq:register'><remove/></query>",
    );
    assert.equal(removed.attrs.type, "result");
    const gone = await bob.waitFor((s) =>
      s.is("presence") && s.attrs.type === "unavailable" && s.attrs.from === `${ROOM}/bob`
    );
    assert.equal(codes(gone), "110 321");
    assert.equal(item(gone).affiliation, "none");
    assert.equal(errorOf(await join(bob, "bob")), "registration-required");
  });
});

Deno.test("muc review: an iq to an occupant does not hold the sender's stream until it is answered", async () => {
  await withMuc(async (login) => {
    const alice = await login("alice");
    const bob = await login("bob");
    await instantRoom(alice);
    await join(bob, "bob");
    // An iq to one's own occupant JID (clients do this): the answer comes from this very
    // stream, which must not be waiting for it.
    const id = `r${++seq}`;
    alice.xmpp.write(
      `<iq type='get' id='${id}' to='${ROOM}/alice'><query xmlns='jabber:iq:version'/></iq>`,
    );
    alice.xmpp.write(`<message to='${ROOM}' type='groupchat'><body>after</body></message>`);
    await groupchat(bob, "after", 3000);
    const answer = await alice.waitFor((s) => s.is("iq") && s.attrs.id === id, 3000);
    assert.equal(answer.attrs.from, `${ROOM}/alice`);
    // Two occupants asking each other at once: no deadlock.
    const a = `r${++seq}`;
    const b = `r${++seq}`;
    alice.xmpp.write(
      `<iq type='get' id='${a}' to='${ROOM}/bob'><query xmlns='jabber:iq:version'/></iq>`,
    );
    bob.xmpp.write(
      `<iq type='get' id='${b}' to='${ROOM}/alice'><query xmlns='jabber:iq:version'/></iq>`,
    );
    const [ra, rb] = await Promise.all([
      alice.waitFor((s) => s.is("iq") && s.attrs.id === a, 3000),
      bob.waitFor((s) => s.is("iq") && s.attrs.id === b, 3000),
    ]);
    assert.equal(ra.attrs.from, `${ROOM}/bob`);
    assert.equal(rb.attrs.from, `${ROOM}/alice`);
    assert.notEqual(errorOf(ra), "remote-server-timeout");
  });
});

Deno.test("muc review: a temporary room goes away when its last occupant is removed (333)", async () => {
  await withMuc(async (login) => {
    const alice = await login("alice");
    const bob = await login("bob");
    await instantRoom(alice);
    // Alice's client bounces an error to the room: she is out (333)…
    alice.xmpp.write(
      `<message to='${ROOM}' type='error'><error type='cancel'>` +
        `<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
    );
    const out = await alice.waitFor((s) =>
      s.is("presence") && s.attrs.type === "unavailable" && s.attrs.from === `${ROOM}/alice`
    );
    assert.equal(codes(out), "110 333");
    // …and the empty temporary room is gone, as Prosody destroys it.
    const info = await iq(
      bob,
      ROOM,
      "get",
      "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    );
    assert.equal(errorOf(info), "item-not-found");

    // An owner cannot kick herself (nor anyone an admin or owner, as Prosody): the room stays.
    await instantRoom(alice);
    const kick = await iq(
      alice,
      ROOM,
      "set",
      `<query xmlns='${ADMIN}'><item nick='alice' role='none'/></query>`,
    );
    assert.equal(errorOf(kick), "not-allowed");
    const info2 = await iq(
      bob,
      ROOM,
      "get",
      "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    );
    assert.equal(info2.attrs.type, "result");
  });
});

Deno.test({
  name: "muc review: banning a whole domain keeps its users out (as Prosody's host bans)",
  fn: async () => {
    await withMuc(async (login) => {
      const alice = await login("alice");
      const bob = await login("bob");
      await instantRoom(alice);
      await join(bob, "bob");
      // Bob's domain is banned (alice keeps her explicit owner affiliation).
      const ban = await iq(
        alice,
        ROOM,
        "set",
        `<query xmlns='${ADMIN}'><item jid='localhost' affiliation='outcast'/></query>`,
      );
      assert.equal(ban.attrs.type, "result");
      const gone = await bob.waitFor((s) =>
        s.is("presence") && s.attrs.type === "unavailable" && s.attrs.from === `${ROOM}/bob`
      );
      assert.equal(codes(gone), "110 301");
      assert.equal(errorOf(await join(bob, "bob")), "forbidden");
    });
  },
});

// --- unit-level: the parts with a stand-in service -----------------------------------

function config(over: Partial<RoomConfig> = {}): RoomConfig {
  return {
    name: "",
    description: "",
    language: "",
    persistent: false,
    public: true,
    membersOnly: false,
    moderated: false,
    password: "",
    whois: "moderators",
    changeSubject: false,
    allowInvites: false,
    allowPm: "anyone",
    historyLength: 20,
    maxUsers: 0,
    archiving: false,
    ...over,
  };
}

interface Fake {
  svc: Service;
  sent: Stanza[];
  toOrigin: Stanza[];
  origin: Origin;
}

function fake(over: Partial<Service> = {}): Fake {
  const sent: Stanza[] = [];
  const toOrigin: Stanza[] = [];
  const module = {
    host: SERVICE,
    send: (s: Stanza) => sent.push(s),
    fullSession: () => undefined,
    log: { error() {}, warn() {}, info() {}, debug() {} },
  } as unknown as Module;
  const svc: Service = {
    module,
    host: SERVICE,
    rooms: new Map(),
    maxHistory: 20,
    maxOccupants: 100,
    defaults: () => config(),
    save: () => Promise.resolve(),
    occupantId: () => "oid",
    broadcastPresence() {},
    remove() {},
    destroy: () => Promise.resolve(),
    broadcastMessage() {},
    ...over,
  };
  const origin = { send: (s: Stanza) => toOrigin.push(s) } as unknown as Origin;
  return { svc, sent, toOrigin, origin };
}

function seat(room: Room, nick: string, full: string): Occupant {
  const o: Occupant = {
    nick,
    jid: `${room.jid}/${nick}`,
    bareJid: full.slice(0, full.indexOf("/")),
    role: "moderator",
    sessions: new Map([[full, element("presence")]]),
    occupantId: "oid",
  };
  room.occupants.set(nick, o);
  room.byRealJid.set(full, nick);
  return o;
}

function invite(from: string, ...to: string[]): Stanza {
  const m = element("message", { from, to: ROOM });
  const x = m.tag("x", { xmlns: USER });
  for (const t of to) x.tag("invite", { to: t }).up();
  return m.up();
}

/** Collects unhandled rejections while `fn` runs (and a little after). */
async function rejections(fn: () => Promise<unknown> | unknown): Promise<unknown[]> {
  const seen: unknown[] = [];
  const on = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    seen.push(e.reason);
  };
  globalThis.addEventListener("unhandledrejection", on);
  try {
    await fn();
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
  } finally {
    globalThis.removeEventListener("unhandledrejection", on);
  }
  return seen;
}

Deno.test("muc review: invitations to a members-only room respect the room's affiliation limit", async () => {
  const { svc, sent, toOrigin, origin } = fake();
  const room = newRoom("club", ROOM, config({ membersOnly: true }));
  room.affiliations["alice@localhost"] = { affiliation: "owner" };
  for (let i = 1; i < MAX_AFFILIATIONS; i++) {
    room.affiliations[`m${i}@localhost`] = { affiliation: "member" };
  }
  seat(room, "alice", "alice@localhost/r");
  const hooks = { archive: () => Promise.resolve(undefined) };
  const stanza = invite("alice@localhost/r", "new1@localhost", "new2@localhost");
  await onRoomMessage(svc, hooks, room, { origin, stanza } as StanzaEvent);
  assert.equal(Object.keys(room.affiliations).length, MAX_AFFILIATIONS);
  assert.equal(sent.length, 0, "no invitation goes out");
  assert.equal(toOrigin[0]?.getError().condition, "resource-constraint");
});

Deno.test("muc review: a failing save after an invitation is no unhandled rejection", async () => {
  const { svc, origin } = fake({ save: () => Promise.reject(new Error("disk full")) });
  const room = newRoom("club", ROOM, config({ membersOnly: true }));
  room.affiliations["alice@localhost"] = { affiliation: "owner" };
  seat(room, "alice", "alice@localhost/r");
  const hooks = { archive: () => Promise.resolve(undefined) };
  const seen = await rejections(() =>
    onRoomMessage(svc, hooks, room, {
      origin,
      stanza: invite("alice@localhost/r", "bob@localhost"),
    } as StanzaEvent)
  );
  assert.deepEqual(seen, []);
});

Deno.test("muc review: a failing destroy when the last occupant leaves is no unhandled rejection", async () => {
  const { svc, origin } = fake({ destroy: () => Promise.reject(new Error("disk full")) });
  const room = newRoom("club", ROOM, config());
  room.affiliations["alice@localhost"] = { affiliation: "owner" };
  svc.rooms.set("club", room);
  seat(room, "alice", "alice@localhost/r");
  const hooks = {
    mayCreate: () => true,
    create: () => undefined,
    history: () => Promise.resolve([]),
  };
  const stanza = element("presence", {
    from: "alice@localhost/r",
    to: `${ROOM}/alice`,
    type: "unavailable",
  });
  const seen = await rejections(() =>
    onOccupantPresence(svc, hooks, { origin, stanza } as StanzaEvent)
  );
  assert.deepEqual(seen, []);
  assert.equal(room.occupants.size, 0);
});
