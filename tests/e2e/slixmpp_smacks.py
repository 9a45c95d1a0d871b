"""Stream management from an independent client (slixmpp's xep_0198).

Usage: slixmpp_smacks.py JID PASSWORD PORT
Logs in with stream management (resumable), prints ENABLED, waits for a
chat message "one", then cuts its TCP connection without closing the stream
(CUT), reconnects after two seconds and resumes (RESUMED, or FAILED), and
waits for the message "two" that was sent while it was away. Prints GOT
<body> per message and DONE at the end.
"""
import asyncio
import ssl
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin("xep_0198")
        self.register_plugin("xep_0203")
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("sm_enabled", lambda _e: print("ENABLED", flush=True))
        self.add_event_handler("session_resumed", self.on_resumed)
        self.add_event_handler("sm_failed", lambda _e: print("FAILED", flush=True))
        self.add_event_handler("message", self.on_message)
        self.starts = 0
        self.got = {}

    async def on_start(self, _event):
        self.starts += 1
        print("SESSION", self.starts, self.boundjid.full, flush=True)
        self.send_presence()

    def on_resumed(self, _event):
        print("RESUMED", flush=True)

    def on_message(self, msg):
        body = msg["body"]
        delayed = "delayed" if msg["delay"]["stamp"] else "live"
        print("GOT", body, delayed, flush=True)
        self.got.setdefault(body, asyncio.Event()).set()

    async def wait_for(self, body, seconds=15):
        await asyncio.wait_for(self.got.setdefault(body, asyncio.Event()).wait(), seconds)


async def main(jid, password, port):
    c = Client(jid, password)
    c.connect(("127.0.0.1", int(port)))
    try:
        await c.wait_for("one")
        print("CUT", flush=True)
        c.transport.abort()  # the connection is gone; no </stream:stream>
        await asyncio.sleep(2)
        c.connect(("127.0.0.1", int(port)))
        await c.wait_for("two")
        print("DONE", flush=True)
    except asyncio.TimeoutError:
        print("TIMEOUT", flush=True)
    c.disconnect()
    await asyncio.sleep(0.5)


asyncio.run(main(*sys.argv[1:4]))
