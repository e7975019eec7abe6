"""A dispatcher component: discovers workers through the server's disco#items, watches their
presence, and sends each job to the least loaded available worker.

    python examples/jobs/dispatcher.py jobs.example.org --secret-file jobs.secret \\
        --server 127.0.0.1:5347 --xmpp-domain example.org < jobs.txt

A worker is available while its last presence is available or away (not `dnd`, not
unavailable); its load is the larger of the `jobs` it last reported and the jobs this
dispatcher has in flight with it, over its `capacity`. A job that bounces (the worker is gone:
the server answers `remote-server-timeout`), whose worker leaves, or that gets no answer while
its worker no longer answers a ping, goes back to the queue: none is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
from dataclasses import dataclass, field

import slixmpp
from protocol import IDENTITY, JOB, LOAD, component_arguments, connection, job_element
from slixmpp.exceptions import IqError, IqTimeout

log = logging.getLogger("dispatcher")


@dataclass
class WorkerState:
    jid: str
    show: str | None = "unavailable"
    reported: int = 0  # jobs, as its last presence said
    capacity: int = 1
    in_flight: dict[str, str] = field(default_factory=dict)  # job id -> payload, unanswered
    heard: bool = False  # its presence came at least once

    @property
    def available(self) -> bool:
        return self.show in (None, "away", "chat") and self.load < 1

    @property
    def load(self) -> float:
        return max(self.reported, len(self.in_flight)) / self.capacity


class Dispatcher(slixmpp.ComponentXMPP):
    def __init__(
        self, domain: str, secret: str, host: str, port: int, server: str, timeout: float = 30
    ) -> None:
        super().__init__(domain, secret, host, port)
        self.server_domain = server
        self.timeout = timeout  # seconds before an unanswered job's worker is pinged
        self.workers: dict[str, WorkerState] = {}
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.results: dict[str, tuple[str, str]] = {}  # job id -> (worker, answer)
        self.assigned: list[tuple[str, str]] = []  # (job id, worker), every attempt in order
        self.changed = asyncio.Event()  # a worker or a job moved: whoever waits looks again
        self._ids = itertools.count(1)
        self._sending: set[asyncio.Future[None]] = set()  # jobs on their way
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0199")
        self.add_event_handler("presence", self._presence)

    # ---- discovery and presence ------------------------------------------------------------

    async def discover(self) -> list[str]:
        """Workers among the components the server lists; subscribes to each one's presence."""
        disco = self.plugin["xep_0030"]
        items = await disco.get_items(jid=self.server_domain, ifrom=self.boundjid.bare)
        found = []
        for jid, _node, _name in items["disco_items"]["items"]:
            if jid == self.boundjid.bare:
                continue  # ourselves (slixmpp would answer from its own tables)
            try:
                info = await disco.get_info(jid=jid, ifrom=self.boundjid.bare, timeout=10)
            except (IqError, IqTimeout):
                continue  # not connected now (remote-server-timeout), or not answering
            identities = {(c, t) for c, t, _lang, _name in info["disco_info"]["identities"]}
            if IDENTITY in identities:
                found.append(jid)
                self.workers.setdefault(jid, WorkerState(jid))
                self.send_presence(pto=jid, pfrom=self.boundjid.bare, ptype="subscribe")
        return found

    def _presence(self, presence: slixmpp.Presence) -> None:
        state = self.workers.get(str(presence["from"].bare))
        if state is None or presence["type"] in ("subscribed", "subscribe", "unsubscribed"):
            return
        state.heard = True
        if presence["type"] == "unavailable":
            self._gone(state)
        else:
            state.show = presence["show"] or None
            load = presence.xml.find(LOAD)
            if load is not None:
                state.reported = int(load.get("jobs", "0"))
                state.capacity = max(1, int(load.get("capacity", "1")))
        self._changed()

    def _gone(self, state: WorkerState) -> None:
        """The worker left: what it had not answered goes back to the queue."""
        state.show = "unavailable"
        for job_id, payload in sorted(state.in_flight.items()):
            log.info("job %s back to the queue: %s left", job_id, state.jid)
            self.queue.put_nowait((job_id, payload))
        state.in_flight.clear()
        self._changed()

    def _changed(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()  # waiters hold the old one, which stays set

    async def heard_from_all(self) -> None:
        """Until every discovered worker has told its presence (its load) once."""
        while not all(w.heard for w in self.workers.values()):
            await self.changed.wait()

    # ---- jobs ------------------------------------------------------------------------------

    def submit(self, payload: str) -> str:
        job_id = f"job-{next(self._ids)}"
        self.queue.put_nowait((job_id, payload))
        return job_id

    def least_loaded(self) -> WorkerState | None:
        ready = [w for w in self.workers.values() if w.available]
        return min(ready, key=lambda w: (w.load, w.jid)) if ready else None

    async def run(self) -> None:
        """Hands out queued jobs for as long as the dispatcher runs."""
        while True:
            job_id, payload = await self.queue.get()
            if job_id in self.results:  # answered after it was requeued: done already
                continue
            while (worker := self.least_loaded()) is None:
                await self.changed.wait()
            worker.in_flight[job_id] = payload
            self.assigned.append((job_id, worker.jid))
            task = asyncio.ensure_future(self._send(worker, job_id, payload))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, worker: WorkerState, job_id: str, payload: str) -> None:
        iq = self.make_iq_set(ito=worker.jid, ifrom=self.boundjid.bare)
        iq.xml.append(job_element(job_id, payload))
        while True:
            try:
                reply = await iq.send(timeout=self.timeout)
                break
            except IqTimeout:
                if job_id in worker.in_flight and await self._alive(worker):
                    continue  # slow, not gone: keep waiting (a ping got through)
            except IqError as err:  # remote-server-timeout: the worker is not connected
                log.info("job %s to %s failed: %s", job_id, worker.jid, err.condition)
            if job_id in worker.in_flight:
                self._gone(worker)
            return
        done = reply.xml.find(JOB)
        worker.in_flight.pop(job_id, None)
        answer = (done.text or "") if done is not None else ""
        self.results.setdefault(job_id, (worker.jid, answer))  # the first answer wins
        self._changed()

    async def _alive(self, worker: WorkerState) -> bool:
        try:
            await self.plugin["xep_0199"].ping(worker.jid, ifrom=self.boundjid.bare, timeout=10)
            return True
        except (IqError, IqTimeout):
            return False


def main() -> None:
    parser = component_arguments(__doc__.split("\n\n")[0])
    args = parser.parse_args()
    dispatcher = Dispatcher(*connection(args))

    async def session() -> None:
        started = asyncio.Event()
        dispatcher.add_event_handler("session_start", lambda _e: started.set())
        dispatcher.connect()
        await started.wait()
        print("workers:", ", ".join(await dispatcher.discover()) or "none")
        with contextlib.suppress(TimeoutError):  # a worker that never answers is not waited for
            await asyncio.wait_for(dispatcher.heard_from_all(), 10)
        jobs = [dispatcher.submit(line.strip()) for line in sys.stdin if line.strip()]
        runner = asyncio.ensure_future(dispatcher.run())
        while len(dispatcher.results) < len(jobs):
            await dispatcher.changed.wait()
        runner.cancel()
        for job_id in jobs:
            worker, answer = dispatcher.results[job_id]
            print(f"{job_id} {worker}: {answer}")
        await dispatcher.disconnect()

    asyncio.get_event_loop().run_until_complete(session())


if __name__ == "__main__":
    main()
