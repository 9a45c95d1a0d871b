"""Client State Indication from an independent client (slixmpp's xep_0352).

Usage: slixmpp_csi.py JID PASSWORD PORT
Logs in, sends initial presence, goes inactive (INACTIVE), then records what
arrives from its contact: presence (with its show), chat states, messages
with a body. When the body "wake" arrives it prints ORDER with the list and
SPREAD with the seconds between the first and the last arrival, then DONE.
"""
import asyncio
import ssl
import sys
import time

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin("xep_0352")
        self.register_plugin("xep_0085")
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("presence", self.on_presence)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("chatstate", self.on_chatstate)
        self.inactive = False
        self.arrivals = []
        self.woken = asyncio.Event()

    async def on_start(self, _event):
        await self.get_roster()
        self.send_presence()
        await asyncio.sleep(0.5)  # the contact's current presence comes in first
        self.plugin["xep_0352"].send_inactive()
        self.inactive = True
        print("INACTIVE", flush=True)

    def record(self, what):
        if self.inactive:
            self.arrivals.append((time.monotonic(), what))

    def on_presence(self, pres):
        if pres["from"].bare != self.boundjid.bare:
            self.record("presence:" + (pres["show"] or "available"))

    def on_message(self, msg):
        if msg["body"]:
            self.record("body:" + msg["body"])
            if msg["body"] == "wake":
                self.woken.set()

    def on_chatstate(self, msg):
        self.record("state:" + msg["chat_state"])


async def main(jid, password, port):
    c = Client(jid, password)
    c.connect(("127.0.0.1", int(port)))
    try:
        await asyncio.wait_for(c.woken.wait(), 20)
        await asyncio.sleep(0.2)
        print("ORDER", ",".join(w for _, w in c.arrivals), flush=True)
        print("SPREAD", round(c.arrivals[-1][0] - c.arrivals[0][0], 3), flush=True)
        print("DONE", flush=True)
    except asyncio.TimeoutError:
        print("TIMEOUT", ",".join(w for _, w in c.arrivals), flush=True)
    c.disconnect()
    await asyncio.sleep(0.5)


asyncio.run(main(*sys.argv[1:4]))
