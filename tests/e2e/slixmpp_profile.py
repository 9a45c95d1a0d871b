"""The personal profile in PEP with an independent client (slixmpp's xep_0084,
xep_0172, xep_0054, xep_0048, xep_0060, xep_0163, xep_0115).

Usage: slixmpp_profile.py PORT
Two accounts, password "<name> pw", each subscribed to the other's presence.
bob shows interest (+notify in his caps) in alice's avatar metadata and
nickname; alice publishes an avatar (XEP-0084) and a nickname (XEP-0172),
bob prints the notifications (METADATA, NICK), fetches the avatar's data by
id (AVATAR) and alice's vcard-temp (VCARD-PHOTO: the PEP avatar as PHOTO).
alice sets a vcard-temp with a NICKNAME; bob reads her vCard4 (VCARD4).
alice publishes a XEP-0402 bookmark and reads it back as XEP-0048 in private
storage (LEGACY); she saves a legacy list with another room and reads the
PEP node (PEP-BOOKMARK). Refusals: bob reading alice's bookmarks
(BOB-BOOKMARKS), bob publishing to alice's node (FOREIGN-PUBLISH), alice
publishing an avatar larger than pep_max_item_size (TOO-BIG). Prints DONE at
the end.
"""
import asyncio
import base64
import hashlib
import ssl
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0048 import Bookmarks

METADATA = "urn:xmpp:avatar:metadata"
DATA = "urn:xmpp:avatar:data"
NICK = "http://jabber.org/protocol/nick"
VCARD4 = "urn:ietf:params:xml:ns:vcard-4.0"
BOOKMARKS = "urn:xmpp:bookmarks:1"
PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
ET.register_namespace("", BOOKMARKS)  # bookmark payloads printed as sent

AVATAR = b"\x89PNG\r\n\x1a\n" + bytes(range(56))  # 64 bytes, not a real image
BIG_AVATAR = bytes(range(256)) * 40  # 10 KiB


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for p in ["xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163",
                  "xep_0084", "xep_0172", "xep_0054", "xep_0048"]:
            self.register_plugin(p)
        self.started = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)

    async def on_start(self, _event):
        # The presence carries the caps of every interest registered so far.
        await self["xep_0115"].update_caps(broadcast=False)
        self.send_presence()
        await self.get_roster()
        self.started.set()


def options(fields):
    form = slixmpp.plugins.xep_0004.Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden",
                   value="http://jabber.org/protocol/pubsub#publish-options")
    for var, value in fields.items():
        form.add_field(var=var, value=value)
    return form


def error_line(label, e):
    err = e.iq["error"]
    specific = [c.tag.split("}")[1] for c in err.xml if c.tag.startswith(f"{{{PUBSUB_ERRORS}}}")]
    return f"{label} {err['type']} {err['condition']} {' '.join(specific) or '-'}"


async def online(name, port, setup=None):
    c = Client(f"{name}@localhost/py", f"{name} pw")
    if setup:
        setup(c)
    c.connect(("127.0.0.1", int(port)))
    await asyncio.wait_for(c.started.wait(), 10)
    return c


async def main(port):
    metadata_seen = asyncio.Event()
    nicks = {}  # nick → event, set when bob is notified of it
    data_notifications = []

    def nick_seen(nick):
        return nicks.setdefault(nick, asyncio.Event())

    def bob_setup(c):
        c["xep_0163"].add_interest(METADATA)
        c["xep_0163"].add_interest(NICK)

        def on_publish(msg):
            # (One item per notification; iterating it here would restart
            # xep_0060's own iteration over the same stanza.)
            items = msg["pubsub_event"]["items"]
            item = items["item"]
            if msg["from"].bare == "alice@localhost":
                if items["node"] == METADATA:
                    info = item.xml.find(f"{{{METADATA}}}metadata/{{{METADATA}}}info")
                    print("METADATA", item["id"], info.get("id"), info.get("type"),
                          info.get("bytes"), flush=True)
                    metadata_seen.set()
                elif items["node"] == NICK:
                    nick = item.xml.findtext(f"{{{NICK}}}nick")
                    print("NICK", item["id"], nick, flush=True)
                    nick_seen(nick).set()
                elif items["node"] == DATA:
                    data_notifications.append(item["id"])
        c.add_event_handler("pubsub_publish", on_publish)

    bob = await online("bob", port, bob_setup)
    await asyncio.sleep(1)  # his caps are asked for and known
    alice = await online("alice", port)
    alice_jid = alice.boundjid.bare

    # XEP-0084: data, then metadata; bob is told of the metadata only.
    avatar_id = hashlib.sha1(AVATAR).hexdigest()
    await alice["xep_0084"].publish_avatar(AVATAR)
    await alice["xep_0084"].publish_avatar_metadata(
        {"id": avatar_id, "type": "image/png", "bytes": len(AVATAR)})
    await asyncio.wait_for(metadata_seen.wait(), 10)
    r = await bob["xep_0084"].retrieve_avatar(alice_jid, avatar_id)
    for item in r["pubsub"]["items"]:
        data = item["avatar_data"]["value"]
        print("AVATAR", item["id"], len(data), hashlib.sha1(data).hexdigest() == avatar_id,
              flush=True)

    # XEP-0172.
    await alice["xep_0172"].publish_nick("Alice")
    await asyncio.wait_for(nick_seen("Alice").wait(), 10)

    # vcard-temp shows the PEP avatar as PHOTO (XEP-0153's view of it).
    r = await bob["xep_0054"].get_vcard(alice_jid)
    photo = r["vcard_temp"].xml.find("{vcard-temp}PHOTO")
    binval = base64.b64decode(photo.findtext("{vcard-temp}BINVAL"))
    print("VCARD-PHOTO", photo.findtext("{vcard-temp}TYPE"),
          hashlib.sha1(binval).hexdigest() == avatar_id, flush=True)

    # A vcard-temp set with a NICKNAME becomes the vCard4 (and the PEP nick).
    vcard = alice["xep_0054"].make_vcard()
    vcard["FN"] = "Alice Liddell"
    vcard["NICKNAME"] = "Ally"
    await alice["xep_0054"].publish_vcard(vcard)
    await asyncio.wait_for(nick_seen("Ally").wait(), 10)
    iq = bob.Iq()
    iq["type"] = "get"
    iq["to"] = alice_jid
    iq.append(ET.Element(f"{{{VCARD4}}}vcard"))
    r = await iq.send()
    v4 = r.xml.find(f"{{{VCARD4}}}vcard")
    print("VCARD4", v4.findtext(f"{{{VCARD4}}}fn/{{{VCARD4}}}text"), "/",
          v4.findtext(f"{{{VCARD4}}}nickname/{{{VCARD4}}}text"), flush=True)

    # XEP-0402 published, read as XEP-0048 (private XML storage).
    conference = ET.fromstring(
        f"<conference xmlns='{BOOKMARKS}' name='Club' autojoin='true'><nick>al</nick></conference>")
    await alice["xep_0060"].publish(alice_jid, BOOKMARKS, id="club@conference.localhost",
                                    payload=conference, options=options({
                                        "pubsub#persist_items": "true",
                                        "pubsub#max_items": "max",
                                        "pubsub#send_last_published_item": "never",
                                        "pubsub#access_model": "whitelist",
                                    }))
    r = await alice["xep_0048"].get_bookmarks(method="xep_0049")
    legacy = r["private"]["bookmarks"]
    for conf in legacy["conferences"]:
        print("LEGACY", conf["jid"], conf["name"], conf["autojoin"], conf["nick"], flush=True)

    # XEP-0048 saved (the same list and one more room), read as XEP-0402.
    saved = Bookmarks()
    for conf in legacy["conferences"]:
        saved.add_conference(conf["jid"], conf["nick"], name=conf["name"],
                             autojoin=conf["autojoin"])
    saved.add_conference("lounge@conference.localhost", "ally", name="Lounge", autojoin=False)
    await alice["xep_0048"].set_bookmarks(saved, method="xep_0049")
    r = await alice["xep_0060"].get_items(alice_jid, BOOKMARKS)
    for item in r["pubsub"]["items"]:
        print("PEP-BOOKMARK", item["id"], ET.tostring(item["payload"], encoding="unicode"),
              flush=True)

    # Refusals.
    try:
        await bob["xep_0060"].get_items(alice_jid, BOOKMARKS)
        print("BOB-BOOKMARKS none", flush=True)
    except IqError as e:
        print(error_line("BOB-BOOKMARKS", e), flush=True)
    try:
        await bob["xep_0060"].publish(alice_jid, NICK, id="current",
                                      payload=ET.fromstring(f"<nick xmlns='{NICK}'>Bob</nick>"))
        print("FOREIGN-PUBLISH none", flush=True)
    except IqError as e:
        print(error_line("FOREIGN-PUBLISH", e), flush=True)
        print("FOREIGN-PUBLISH-STANZA", e.iq, flush=True)
    try:
        await alice["xep_0084"].publish_avatar(BIG_AVATAR)
        print("TOO-BIG none", flush=True)
    except IqError as e:
        print(error_line("TOO-BIG", e), flush=True)
    # Nothing changed: alice's nick is still hers; bob was never sent avatar data.
    r = await bob["xep_0060"].get_items(alice_jid, NICK)
    for item in r["pubsub"]["items"]:
        print("NICK-NOW", item["id"], item.xml.findtext(f"{{{NICK}}}nick"), flush=True)
    print("DATA-NOTIFICATIONS", len(data_notifications), flush=True)

    for c in [alice, bob]:
        c.disconnect()
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
