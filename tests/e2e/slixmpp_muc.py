"""A multi-user chat service with an independent client (slixmpp's xep_0045,
xep_0004, xep_0030, xep_0249).

Usage: slixmpp_muc.py PORT MUC_DOMAIN
alice, bob and carol (passwords "<name> pw") on localhost, room "club" on
MUC_DOMAIN. Prints one line per checked fact, the labels of the
error cases as `ERROR <label> <error type> <condition>`, then DONE; exits
nonzero (TIMEOUT) if an expected stanza never comes. Set MUC_DEBUG=1 to
dump every stanza received to stderr. The expected lines are Prosody 0.12's
behaviour (the reference): see interop_muc_test.ts.
"""
import asyncio
import os
import ssl
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0004 import Form

NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = "http://jabber.org/protocol/muc#user"
NS_DELAY = "urn:xmpp:delay"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
C = "{jabber:client}"
DEBUG = bool(os.environ.get("MUC_DEBUG"))
WAIT = 10  # seconds for any one expected stanza


def say(*words):
    print(*words, flush=True)


class Timeout(Exception):
    pass


class Client(slixmpp.ClientXMPP):
    """Records every presence and message it receives, in order."""

    def __init__(self, name):
        super().__init__(f"{name}@localhost/py", f"{name} pw")
        self.name = name
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for p in ["xep_0030", "xep_0004", "xep_0045", "xep_0249"]:
            self.register_plugin(p)
        self.started = asyncio.Event()
        self.inbox = []  # ElementTree elements of received <presence/> and <message/>
        self.arrived = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_filter("in", self.record)

    async def on_start(self, _event):
        self.send_presence()
        await self.get_roster()
        self.started.set()

    def record(self, stanza):
        if stanza.xml.tag in (C + "presence", C + "message"):
            xml = ET.fromstring(ET.tostring(stanza.xml))  # a copy
            if DEBUG:
                print(self.name, "<<", ET.tostring(xml).decode(), file=sys.stderr, flush=True)
            self.inbox.append(xml)
            self.arrived.set()
            try:
                slixmpp.JID(xml.get("from") or "")
            except slixmpp.InvalidJID:
                return None  # an error about a malformed address: slixmpp would crash on it
        return stanza

    def clear(self):
        self.inbox.clear()

    async def expect(self, what, pred):
        """The first stanza received (or to come) that matches; only it is taken."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            for i, x in enumerate(self.inbox):
                if pred(x):
                    return self.inbox.pop(i)
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), deadline - loop.time())
            except asyncio.TimeoutError:
                raise Timeout(f"{self.name} waited for {what}") from None

    async def until(self, what, pred):
        """Every stanza received up to and including the first that matches, in order."""
        taken = []
        while True:
            x = await self.expect(what, lambda _x: True)
            taken.append(x)
            if pred(x):
                return taken


def resource(x):
    return (x.get("from") or "").partition("/")[2]


def from_room(room, nick=None):
    def pred(x):
        frm = x.get("from") or ""
        return frm.partition("/")[0] == room and (nick is None or resource(x) == nick)
    return pred


def codes(x):
    u = x.find(f"{{{NS_USER}}}x")
    return sorted(s.get("code") for s in u.findall(f"{{{NS_USER}}}status")) if u is not None else []


def item(x):
    u = x.find(f"{{{NS_USER}}}x")
    i = u.find(f"{{{NS_USER}}}item") if u is not None else None
    return i if i is not None else ET.Element("item")


def error_of(x):
    e = x.find(C + "error")
    if e is None:
        return "none"
    cond = next((c.tag.split("}")[1] for c in e if c.tag.startswith("{" + NS_STANZAS) and c.tag.split("}")[1] != "text"), "?")
    return f"{e.get('type')} {cond}"


def is_presence(x, type_=None):
    return x.tag == C + "presence" and x.get("type") == type_


def by_id(id_):
    return lambda x: x.get("id") == id_


def is_self(x):
    return x.tag == C + "presence" and "110" in codes(x)


def is_subject(x):
    return (x.tag == C + "message" and x.get("type") == "groupchat"
            and x.find(C + "subject") is not None and x.find(C + "body") is None)


def body(x):
    return x.findtext(C + "body")


def join_xml(to, id_, password=None, history=None):
    """A join presence as raw XML, for addresses slixmpp's JID class refuses to build."""
    parts = [f"<presence to='{to}' id='{id_}'><x xmlns='{NS_MUC}'>"]
    if history:
        parts.append(f"<history {history}/>")
    if password is not None:
        parts.append(f"<password>{password}</password>")
    parts.append("</x></presence>")
    return "".join(parts)


def join(c, room, nick, id_, password=None, history=None):
    p = c.make_presence(pto=f"{room}/{nick}")
    p["id"] = id_
    p.enable("muc_join")
    if password is not None:
        p["muc_join"]["password"] = password
    if history:
        k, v = history
        p["muc_join"]["history"][k] = v
    p.send()


async def join_error(c, label, room, nick, id_, password=None):
    join(c, room, nick, id_, password)
    x = await c.expect(f"{label} error", by_id(id_))
    say("ERROR", label, error_of(x) if x.get("type") == "error" else f"joined {' '.join(codes(x))}")


def config_form(fields):
    form = Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/muc#roomconfig")
    for var, (ftype, value) in fields.items():
        form.add_field(var=var, ftype=ftype, value=value)
    return form


async def iq_outcome(coro):
    try:
        await coro
        return "result"
    except IqError as e:
        return f"error {e.iq['error']['type']} {e.iq['error']['condition']}"


async def online(name, port):
    c = Client(name)
    c.connect(("127.0.0.1", int(port)))
    await asyncio.wait_for(c.started.wait(), WAIT)
    return c


async def main(port, domain):
    room = f"club@{domain}"
    alice = await online("alice", port)
    bob = await online("bob", port)
    carol = await online("carol", port)
    muc = alice["xep_0045"]

    # alice creates the room: 201 (new room) and 110 (self), owner/moderator, locked.
    join(alice, room, "alice", "create")
    x = await alice.expect("alice's self-presence", is_self)
    say("JOINED", *codes(x))
    say("CREATOR", item(x).get("affiliation"), item(x).get("role"))
    await join_error(bob, "locked", room, "bob", "locked")

    # alice configures it: not members-only, password "secret", persistent.
    form = await muc.get_room_config(room)
    have = form.get_fields()
    for var in ["muc#roomconfig_membersonly", "muc#roomconfig_roomsecret", "muc#roomconfig_persistentroom"]:
        say("FIELD", var, "yes" if var in have else "no")
    say("CONFIGURED", await iq_outcome(muc.set_room_config(room, config_form({
        "muc#roomconfig_membersonly": ("boolean", False),
        "muc#roomconfig_passwordprotectedroom": ("boolean", True),
        "muc#roomconfig_roomsecret": ("text-private", "secret"),
        "muc#roomconfig_persistentroom": ("boolean", True),
    }))))

    # bob: the wrong password, then the right one.
    await join_error(bob, "wrong-password", room, "bob", "badpw", password="wrong")
    await join_error(bob, "no-password", room, "bob", "nopw")
    bob.clear()
    join(bob, room, "bob", "bobjoin", password="secret")
    got = await bob.until("bob's self-presence", is_self)
    for x in got:
        if x.tag == C + "presence" and from_room(room)(x):
            i = item(x)
            who = "SELF" if is_self(x) else "OCCUPANT"
            say(who, resource(x), i.get("affiliation"), i.get("role"), *codes(x))
    say("SELF-LAST", "yes" if is_self(got[-1]) else "no")
    rest = await bob.until("the subject", is_subject)
    say("EMPTY-SUBJECT", resource(rest[-1]) or "-", repr(rest[-1].findtext(C + "subject") or ""))
    x = await alice.expect("bob's join", lambda x: from_room(room, "bob")(x) and is_presence(x))
    say("ALICE-SEES", resource(x), item(x).get("role"), (item(x).get("jid") or "").partition("/")[0])

    # the subject, then a message.
    muc.set_subject(room, "Welcome")
    x = await bob.expect("the subject", is_subject)
    say("SUBJECT", resource(x), x.findtext(C + "subject"))
    alice.send_message(mto=room, mbody="hello", mtype="groupchat")
    x = await bob.expect("alice's message", lambda x: x.get("type") == "groupchat" and body(x) == "hello")
    say("MSG", resource(x), body(x))
    x = await alice.expect("her own message", lambda x: x.get("type") == "groupchat" and body(x) == "hello")
    say("ECHO", resource(x), body(x))

    # nick changes: taken, then free.
    p = bob.make_presence(pto=f"{room}/alice")
    p["id"] = "nick-taken"
    p.send()
    x = await bob.expect("nick conflict", by_id("nick-taken"))
    say("ERROR", "nick-in-use", error_of(x))
    bob.clear()
    bob.make_presence(pto=f"{room}/robert").send()
    x = await bob.expect("bob's 303", lambda x: from_room(room, "bob")(x) and is_presence(x, "unavailable"))
    say("NICK-OLD", resource(x), *codes(x), item(x).get("nick"))
    y = await bob.expect("robert's presence", lambda x: from_room(room, "robert")(x) and is_presence(x))
    say("NICK-NEW", resource(y), *codes(y))
    x = await alice.expect("bob's 303", lambda x: from_room(room, "bob")(x) and is_presence(x, "unavailable"))
    say("ALICE-NICK", resource(x), *codes(x), item(x).get("nick"))

    # a private message through the room.
    bob.send_message(mto=f"{room}/alice", mbody="psst", mtype="chat")
    x = await alice.expect("the private message", lambda x: body(x) == "psst")
    say("PM", x.get("from"), x.get("type"), body(x))

    # a direct invitation (XEP-0249) to carol.
    alice["xep_0249"].send_invitation("carol@localhost", room, password="secret", reason="come")
    x = await carol.expect("the invitation", lambda x: x.find("{jabber:x:conference}x") is not None)
    inv = x.find("{jabber:x:conference}x")
    say("INVITE", x.get("from").partition("/")[0], inv.get("jid"), inv.get("password"), inv.get("reason"))

    # carol: bad nicks, then in.
    carol.send_raw(join_xml(f"{room}/", "empty-nick", "secret"))
    x = await carol.expect("empty nick error", by_id("empty-nick"))
    say("ERROR", "empty-nick", error_of(x))
    carol.send_raw(join_xml(f"{room}/bad&#9;nick", "control-nick", "secret"))
    x = await carol.expect("control nick error", by_id("control-nick"))
    say("ERROR", "control-nick", error_of(x))
    join(carol, room, "carol", "caroljoin", password="secret")
    x = await carol.expect("carol's self-presence", is_self)
    say("CAROL", resource(x), item(x).get("affiliation"), item(x).get("role"), *codes(x))

    # alice kicks carol; she comes back; alice bans her.
    say("KICK", await iq_outcome(muc.set_role(room, "carol", "none", reason="behave")))
    x = await carol.expect("carol's kick", lambda x: is_presence(x, "unavailable") and from_room(room, "carol")(x))
    say("KICKED", *codes(x), item(x).get("role"))
    join(carol, room, "carol", "carolback", password="secret")
    x = await carol.expect("carol's self-presence", is_self)
    say("CAROL-BACK", resource(x), item(x).get("role"))
    say("BAN", await iq_outcome(muc.set_affiliation(room, "outcast", jid="carol@localhost", reason="out")))
    x = await carol.expect("carol's ban", lambda x: is_presence(x, "unavailable") and from_room(room, "carol")(x))
    say("BANNED", *codes(x), item(x).get("affiliation"), item(x).get("role"))
    await join_error(carol, "banned", room, "carol", "banned", password="secret")

    # more history, then members-only: bob (no affiliation) is removed.
    for text in ["second", "third"]:
        alice.send_message(mto=room, mbody=text, mtype="groupchat")
        await bob.expect(text, lambda x, t=text: body(x) == t)
    bob.clear()
    say("MEMBERS-ONLY", await iq_outcome(muc.set_room_config(room, config_form({
        "muc#roomconfig_membersonly": ("boolean", True),
    }))))
    x = await bob.expect("bob's removal", lambda x: is_presence(x, "unavailable") and from_room(room, "robert")(x))
    say("REMOVED", *codes(x), item(x).get("role"))
    say("UNBAN", await iq_outcome(muc.set_affiliation(room, "none", jid="carol@localhost")))
    # XEP-0045 §10.2: the remaining occupants get the 322 too. Prosody 0.12 sends
    # them nothing (the occupant's role is already none when it is broadcast);
    # alice's iq result above comes after whatever the room sent her.
    seen = [x for x in alice.inbox if is_presence(x, "unavailable") and from_room(room, "robert")(x)]
    say("ALICE-REMOVED", *(codes(seen[0]) if seen else ["nothing"]))
    await join_error(carol, "members-only", room, "carol", "notmember", password="secret")

    # bob, now a member, joins asking for two messages of history.
    say("MEMBER", await iq_outcome(muc.set_affiliation(room, "member", jid="bob@localhost")))
    bob.clear()
    join(bob, room, "bob", "history", password="secret", history=("maxstanzas", "2"))
    got = await bob.until("bob's self-presence", is_self)
    say("BACK", resource(got[-1]), item(got[-1]).get("affiliation"), item(got[-1]).get("role"))
    got = await bob.until("the subject", is_subject)
    for x in got[:-1]:
        if x.tag == C + "message" and x.get("type") == "groupchat":
            d = x.find(f"{{{NS_DELAY}}}delay")
            stamp = "stamped" if d is not None and d.get("stamp") else "unstamped"
            say("HISTORY", resource(x), body(x), stamp, d.get("from") if d is not None else "-")
    say("HISTORY-SUBJECT", resource(got[-1]), got[-1].findtext(C + "subject"))

    # a form with a value of the wrong type.
    say("BAD-FORM", await iq_outcome(muc.set_room_config(room, config_form({
        "muc#roomconfig_maxusers": ("list-single", "lots"),
        "muc#roomconfig_historylength": ("text-single", "lots"),
    }))))
    form = await muc.get_room_config(room)
    fields = form.get_fields()
    for var in ["muc#roomconfig_maxusers", "muc#roomconfig_historylength"]:
        say("AFTER-BAD-FORM", var, fields[var]["value"] if var in fields else "absent")

    # alice destroys the room, pointing at another.
    bob.clear()
    alice.clear()
    say("DESTROY", await iq_outcome(muc.destroy(room, reason="moving", altroom=f"lounge@{domain}")))
    for c, nick in [(bob, "bob"), (alice, "alice")]:
        x = await c.expect(f"{nick}'s end", lambda x, n=nick: is_presence(x, "unavailable") and from_room(room, n)(x))
        d = x.find(f"{{{NS_USER}}}x/{{{NS_USER}}}destroy")
        say("DESTROYED", nick, *codes(x), d.get("jid") if d is not None else "-",
            d.findtext(f"{{{NS_USER}}}reason") if d is not None else "-")

    for c in [alice, bob, carol]:
        c.disconnect()
    say("DONE")


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2]), 90))
    except (Timeout, asyncio.TimeoutError) as e:
        say("TIMEOUT", e)
        sys.exit(1)
