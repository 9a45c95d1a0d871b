"""Message archive paging from an independent client (slixmpp's xep_0313).

Usage: slixmpp_mam.py JID PASSWORD PORT
Pages through its whole archive oldest first, then newest first (RSM
<after/> and <before/>), 50 at a time, and prints for each direction
FORWARD/BACKWARD <count> <bodies in order, comma-separated>. Then DONE.
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
        self.register_plugin("xep_0059")
        self.register_plugin("xep_0313")
        self.done = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)

    async def on_start(self, _event):
        try:
            for name, reverse in (("FORWARD", False), ("BACKWARD", True)):
                bodies = []
                async for msg in self.plugin["xep_0313"].iterate(reverse=reverse, rsm={"max": 50}):
                    bodies.append(msg["mam_result"]["forwarded"]["stanza"]["body"])
                print(name, len(bodies), ",".join(bodies), flush=True)
            print("DONE", flush=True)
        except Exception as e:  # reported, not hidden
            print("ERROR", repr(e), flush=True)
        self.done.set()


async def main(jid, password, port):
    c = Client(jid, password)
    c.connect(("127.0.0.1", int(port)))
    try:
        await asyncio.wait_for(c.done.wait(), 60)
    except asyncio.TimeoutError:
        print("TIMEOUT", flush=True)
    c.disconnect()
    await asyncio.sleep(0.5)


asyncio.run(main(*sys.argv[1:4]))
