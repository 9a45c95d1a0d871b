"""A pubsub service component with an independent client (slixmpp's xep_0060).

Usage: slixmpp_pubsub.py PORT
alice (password "alice pw") creates node "news" on pubsub.localhost, bob
subscribes and prints EVENT <id> <text> for each notification; alice
publishes two items; bob prints ITEMS <ids> from get_items; alice deletes the
node and bob's get_items prints GONE <condition>. Prints DONE at the end.
"""
import asyncio
import ssl
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError

SERVICE = "pubsub.localhost"


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for p in ["xep_0030", "xep_0004", "xep_0060"]:
            self.register_plugin(p)
        self.started = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)

    async def on_start(self, _event):
        self.send_presence()
        self.started.set()


async def online(name, port):
    c = Client(f"{name}@localhost/py", f"{name} pw")
    c.connect(("127.0.0.1", int(port)))
    await asyncio.wait_for(c.started.wait(), 10)
    return c


async def main(port):
    alice = await online("alice", port)
    bob = await online("bob", port)
    got = asyncio.Queue()

    def on_event(msg):
        item = msg["pubsub_event"]["items"]["item"]
        got.put_nowait((item["id"], item["payload"].text))
    bob.add_event_handler("pubsub_publish", on_event)

    await alice["xep_0060"].create_node(SERVICE, "news")
    await bob["xep_0060"].subscribe(SERVICE, "news")
    for i, text in [("n1", "first"), ("n2", "second")]:
        payload = ET.fromstring(f"<entry xmlns='urn:example'>{text}</entry>")
        await alice["xep_0060"].publish(SERVICE, "news", id=i, payload=payload)
        item_id, item_text = await asyncio.wait_for(got.get(), 10)
        print("EVENT", item_id, item_text, flush=True)
    r = await bob["xep_0060"].get_items(SERVICE, "news")
    print("ITEMS", ",".join(i["id"] for i in r["pubsub"]["items"]), flush=True)
    await alice["xep_0060"].delete_node(SERVICE, "news")
    try:
        await bob["xep_0060"].get_items(SERVICE, "news")
        print("GONE none", flush=True)
    except IqError as e:
        print("GONE", e.iq["error"]["condition"], flush=True)
    alice.disconnect()
    bob.disconnect()
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
