"""PEP with an independent client (slixmpp's xep_0060, xep_0163, xep_0115).

Usage: slixmpp_pep.py PORT
Three accounts, password "<name> pw": carol (alice's contact) shows interest
in OMEMO's device list (+notify in her caps) and prints NOTIFIED <node> <ids>
when alice's publish reaches her; alice publishes an OMEMO device list and
bundle (urn:xmpp:omemo:2) with publish-options access_model=open, then tries
to republish with access_model=presence and prints PRECONDITION <condition>;
bob (no relation to alice) fetches both and prints FETCHED <node> <payload>.
Prints DONE at the end.
"""
import asyncio
import ssl
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError

ET.register_namespace("", "urn:xmpp:omemo:2")  # payloads printed as sent
DEVICES = "urn:xmpp:omemo:2:devices"
BUNDLES = "urn:xmpp:omemo:2:bundles"


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for p in ["xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163"]:
            self.register_plugin(p)
        self.started = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)

    async def on_start(self, _event):
        self.send_presence()
        await self.get_roster()
        self.started.set()


def options(access):
    form = slixmpp.plugins.xep_0004.Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden",
                   value="http://jabber.org/protocol/pubsub#publish-options")
    form.add_field(var="pubsub#access_model", value=access)
    return form


async def online(name, port, setup=None):
    c = Client(f"{name}@localhost/py", f"{name} pw")
    if setup:
        setup(c)
    c.connect(("127.0.0.1", int(port)))
    await asyncio.wait_for(c.started.wait(), 10)
    return c


async def main(port):
    notified = asyncio.Event()

    def carol_setup(c):
        c["xep_0163"].add_interest(DEVICES)

        def on_publish(msg):
            items = msg["pubsub_event"]["items"]
            if items["node"] == DEVICES and not notified.is_set():
                print("NOTIFIED", items["node"], items["item"]["id"], flush=True)
                notified.set()
        c.add_event_handler("pubsub_publish", on_publish)

    carol = await online("carol", port, carol_setup)
    await asyncio.sleep(1)  # her caps are asked for and known
    alice = await online("alice", port)
    devices = ET.fromstring(f"<devices xmlns='urn:xmpp:omemo:2'><device id='12345'/></devices>")
    bundle = ET.fromstring("<bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>c3Br</spk></bundle>")
    await alice["xep_0060"].publish(alice.boundjid.bare, DEVICES, id="current",
                                    payload=devices, options=options("open"))
    await alice["xep_0060"].publish(alice.boundjid.bare, BUNDLES, id="12345",
                                    payload=bundle, options=options("open"))
    try:
        await alice["xep_0060"].publish(alice.boundjid.bare, DEVICES, id="current",
                                        payload=devices, options=options("presence"))
        print("PRECONDITION none", flush=True)
    except IqError as e:
        print("PRECONDITION", e.iq["error"]["condition"],
              e.iq["error"].xml.find("{http://jabber.org/protocol/pubsub#errors}precondition-not-met")
              is not None, flush=True)
    await asyncio.wait_for(notified.wait(), 10)
    bob = await online("bob", port)
    for node in [DEVICES, BUNDLES]:
        r = await bob["xep_0060"].get_items("alice@localhost", node)
        for item in r["pubsub"]["items"]:
            payload = ET.tostring(item["payload"], encoding="unicode")
            print("FETCHED", node, item["id"], payload, flush=True)
    for c in [carol, alice, bob]:
        c.disconnect()
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
