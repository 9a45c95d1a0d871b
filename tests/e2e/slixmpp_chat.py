"""An independent client's everyday session against Cadence, with slixmpp.

Usage: slixmpp_chat.py JID PASSWORD PORT CONTACT PHASE
  PHASE "contact": subscribe to CONTACT, wait until subscribed and its presence
                   is seen, send it a chat message, wait for its reply.
  PHASE "offline": log in and wait for a message from CONTACT sent while offline
                   (with a delay stamp).
Prints one line per milestone; "DONE" when the phase succeeded.
"""
import asyncio
import ssl
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, contact, phase):
        super().__init__(jid, password)
        self.contact = contact
        self.phase = phase
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin("xep_0203")
        self.auto_authorize = True
        self.auto_subscribe = False
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence_available", self.on_available)
        self.add_event_handler("presence_subscribed", self.on_subscribed)
        self.subscribed = asyncio.Event()
        self.seen = asyncio.Event()
        self.reply = asyncio.Event()

    async def on_start(self, _event):
        await self.get_roster()
        self.send_presence()
        print("ONLINE", self.boundjid.full, flush=True)
        try:
            if self.phase == "contact":
                self.send_presence(pto=self.contact, ptype="subscribe")
                await asyncio.wait_for(self.subscribed.wait(), 10)
                print("SUBSCRIBED", flush=True)
                await asyncio.wait_for(self.seen.wait(), 10)
                print("PRESENCE", flush=True)
                self.send_message(mto=self.contact, mbody="Hello from slixmpp", mtype="chat")
                await asyncio.wait_for(self.reply.wait(), 10)
                print("DONE", flush=True)
            else:
                await asyncio.wait_for(self.reply.wait(), 10)
                print("DONE", flush=True)
        except asyncio.TimeoutError:
            print("TIMEOUT", flush=True)
        self.disconnect()

    def on_subscribed(self, presence):
        if presence["from"].bare == self.contact:
            self.subscribed.set()

    def on_available(self, presence):
        if presence["from"].bare == self.contact:
            self.seen.set()

    def on_message(self, msg):
        if msg["from"].bare != self.contact or msg["type"] not in ("chat", "normal"):
            return
        delayed = bool(msg["delay"]["stamp"]) if "delay" in msg.keys() else False
        print("MESSAGE", msg["body"], "delayed" if delayed else "live", flush=True)
        if self.phase == "contact" or delayed:
            self.reply.set()


def main():
    jid, password, port, contact, phase = sys.argv[1:6]
    client = Client(jid, password, contact, phase)
    client.connect(("127.0.0.1", int(port)), force_starttls=True)
    asyncio.get_event_loop().run_until_complete(asyncio.wait_for(client.disconnected, 30))


main()
