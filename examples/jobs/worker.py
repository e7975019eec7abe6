"""A worker component (XEP-0114, slixmpp's ComponentXMPP): does jobs sent as iqs and publishes
its load as presence, to the server's domain and to every subscriber (the dispatcher).

    python examples/jobs/worker.py w1.example.org --secret-file w1.secret --server 127.0.0.1:5347

Presence: available while it has room, `dnd` when full or told to stop taking work
(`set_busy`), unavailable when it stops. It answers subscriptions itself (the server keeps no
roster for components) and lists itself in disco#info as automation/worker.
"""

from __future__ import annotations

import asyncio
import logging

import slixmpp
from protocol import IDENTITY, JOB, component_arguments, connection, job_element, load_element
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

log = logging.getLogger("worker")


class Worker(slixmpp.ComponentXMPP):
    def __init__(
        self, domain: str, secret: str, host: str, port: int, server: str, capacity: int = 4
    ) -> None:
        super().__init__(domain, secret, host, port)
        self.server_domain = server  # the XMPP domain whose disco lists us
        self.capacity = capacity
        self.jobs = 0  # in progress
        self.busy = False  # told to stop taking work (e.g. draining for maintenance)
        self.subscribers: set[str] = set()
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0199")
        self.plugin["xep_0030"].add_identity(*IDENTITY, name=f"Worker {domain}", jid=domain)
        self.register_handler(
            CoroutineCallback("job", MatchXPath(f"{{jabber:component:accept}}iq/{JOB}"), self._job)
        )
        self.add_event_handler("session_start", self._started)
        self.add_event_handler("presence_subscribe", self._subscribe)
        self.add_event_handler("presence_unsubscribe", self._unsubscribe)
        self.add_event_handler("presence_probe", lambda p: self.publish(str(p["from"].bare)))

    async def work(self, payload: str) -> str:
        """The job itself: here, the text reversed after a pause of len(text) milliseconds."""
        await asyncio.sleep(len(payload) / 1000)
        return payload[::-1]

    # ---- load as presence ------------------------------------------------------------------

    @property
    def show(self) -> str | None:
        return "dnd" if self.busy or self.jobs >= self.capacity else None

    def publish(self, only: str | None = None) -> None:
        targets = [only] if only else [self.server_domain, *sorted(self.subscribers)]
        for to in targets:
            presence = self.make_presence(pto=to, pfrom=self.boundjid.bare, pshow=self.show)
            presence["status"] = f"{self.jobs}/{self.capacity} jobs"
            presence.xml.append(load_element(self.jobs, self.capacity))
            presence.send()

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.publish()

    async def stop(self) -> None:
        """Leave cleanly: subscribers learn we are gone before the stream closes."""
        for to in [self.server_domain, *sorted(self.subscribers)]:
            self.send_presence(pto=to, pfrom=self.boundjid.bare, ptype="unavailable")
        await self.disconnect()

    # ---- handlers --------------------------------------------------------------------------

    def _started(self, _event: object) -> None:
        self.send_presence(pto=self.server_domain, pfrom=self.boundjid.bare, ptype="subscribe")
        self.publish()

    def _subscribe(self, presence: slixmpp.Presence) -> None:
        sender = str(presence["from"].bare)
        self.subscribers.add(sender)
        self.send_presence(pto=sender, pfrom=self.boundjid.bare, ptype="subscribed")
        self.publish(sender)

    def _unsubscribe(self, presence: slixmpp.Presence) -> None:
        self.subscribers.discard(str(presence["from"].bare))

    async def _job(self, iq: slixmpp.Iq) -> None:
        job = iq.xml.find(JOB)
        if iq["type"] != "set" or job is None:
            return
        self.jobs += 1
        self.publish()
        try:
            answer = await self.work(job.text or "")
        finally:
            self.jobs -= 1
        reply = iq.reply(clear=True)
        reply.xml.append(job_element(job.get("id", ""), answer, self.boundjid.bare))
        reply.send()
        self.publish()


def main() -> None:
    parser = component_arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=4)
    args = parser.parse_args()
    worker = Worker(*connection(args), args.capacity)
    worker.connect()
    asyncio.get_event_loop().run_until_complete(worker.disconnected)


if __name__ == "__main__":
    main()
