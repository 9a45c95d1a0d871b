"""Logs in to a Cadence server with slixmpp over STARTTLS, pings it, disconnects.

Usage: slixmpp_login.py JID PASSWORD PORT
Prints "OK <full jid>" on success, "FAILED <reason>" otherwise.
"""
import asyncio
import ssl
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.register_plugin("xep_0199")
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_all_auth", self.on_failed)
        self.outcome = "FAILED no session"

    async def on_start(self, _event):
        secure = self.is_secure if hasattr(self, "is_secure") else "?"
        await self.plugin["xep_0199"].ping(jid=self.boundjid.domain, timeout=5)
        self.outcome = f"OK {self.boundjid.full} secure={secure}"
        self.disconnect()

    def on_failed(self, _event):
        self.outcome = "FAILED authentication"
        self.disconnect()


def main():
    jid, password, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = Client(jid, password)
    client.connect(("127.0.0.1", port), force_starttls=True)
    loop = asyncio.get_event_loop()
    loop.run_until_complete(asyncio.wait_for(client.disconnected, 20))
    print(client.outcome)


main()
