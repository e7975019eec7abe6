"""The founding scenario (issue 10 section 3): three worker components and a dispatcher from
examples/jobs against the bundled server. Jobs go to the idlest worker, move away from one that
reports busy (dnd) or leaves, and none is lost.

The workers' work is held by the test (an event per job), so every step waits on an event, not
on time."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.support.xmpp import DOMAIN, running_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "jobs"
WORKERS = ("w1.vines.test", "w2.vines.test", "w3.vines.test")
DISPATCH = "jobs.vines.test"


@pytest.fixture
def example_modules(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    for name in ("protocol", "worker", "dispatcher"):
        sys.modules.pop(name, None)
    import dispatcher
    import worker

    return worker, dispatcher


async def until(predicate, what: str, dispatcher) -> None:
    """Wait for the dispatcher's state to satisfy `predicate` (it signals every change)."""

    async def loop() -> None:
        while not predicate():
            await dispatcher.changed.wait()

    try:
        await asyncio.wait_for(loop(), 10)
    except TimeoutError:
        raise AssertionError(f"never: {what}") from None


async def test_jobs_go_to_the_idlest_worker_and_none_is_lost(tmp_path, pki, example_modules):
    worker_mod, dispatcher_mod = example_modules
    components = {d: {"secret": f"secret-{d}"} for d in (*WORKERS, DISPATCH)}
    sections = {"listeners": {"component_port": 0}, "components": components}
    async with running_server(tmp_path, pki, **sections) as harness:
        port = harness.port("component")
        held: dict[str, asyncio.Event] = {}  # payload -> released when the test says

        class HeldWorker(worker_mod.Worker):
            async def work(self, payload: str) -> str:
                await held.setdefault(payload, asyncio.Event()).wait()
                return payload.upper()

        workers = {}
        for domain in WORKERS:
            w = HeldWorker(domain, f"secret-{domain}", "127.0.0.1", port, DOMAIN, capacity=4)
            started = asyncio.Event()
            w.add_event_handler("session_start", lambda _e, s=started: s.set())
            w.connect()
            await asyncio.wait_for(started.wait(), 10)
            workers[domain] = w
        w1, w2, w3 = (workers[d] for d in WORKERS)
        # load from elsewhere: w1 runs two jobs, w2 one, w3 none
        w1.jobs, w2.jobs = 2, 1
        w1.publish()
        w2.publish()

        d = dispatcher_mod.Dispatcher(DISPATCH, f"secret-{DISPATCH}", "127.0.0.1", port, DOMAIN)
        started = asyncio.Event()
        d.add_event_handler("session_start", lambda _e: started.set())
        d.connect()
        await asyncio.wait_for(started.wait(), 10)
        assert sorted(await d.discover()) == list(WORKERS)  # not itself, not by name
        await until(
            lambda: (
                [d.workers[x].reported for x in WORKERS] == [2, 1, 0]
                and all(d.workers[x].show is None for x in WORKERS)
            ),
            "every worker's load seen",
            d,
        )
        runner = asyncio.ensure_future(d.run())

        def worker_of(job_id: str) -> str:
            return [w for j, w in d.assigned if j == job_id][-1]

        # 1. the idlest worker gets the job
        a = d.submit("a")
        await until(lambda: any(j == a for j, _ in d.assigned), "job a assigned", d)
        assert worker_of(a) == "w3.vines.test"
        await until(lambda: d.workers["w3.vines.test"].reported == 1, "w3 reports a", d)

        # 2. a worker that reports busy (dnd) gets no more: w2 is next (w1 runs two)
        w3.set_busy(True)
        await until(lambda: d.workers["w3.vines.test"].show == "dnd", "w3 dnd seen", d)
        b = d.submit("b")
        await until(lambda: any(j == b for j, _ in d.assigned), "job b assigned", d)
        assert worker_of(b) == "w2.vines.test"
        await until(lambda: d.workers["w2.vines.test"].reported == 2, "w2 reports b", d)

        # 3. a worker that leaves with a job: the job moves to the one left (w1)
        await w2.stop()
        await until(lambda: worker_of(b) != "w2.vines.test", "job b moved", d)
        assert worker_of(b) == "w1.vines.test"

        # 4. a job sent to a worker that vanished without a word bounces and moves on
        w1.abort()
        route = harness.server.components.routes["w1.vines.test"]
        while route.link is not None and not route.link.closing:  # the server saw it go
            await asyncio.sleep(0.01)
        c = d.submit("c")
        await until(
            lambda: d.workers["w1.vines.test"].show == "unavailable", "w1's bounce noticed", d
        )
        # b (in flight at w1) and c are queued again; w3 takes them once it has room
        w3.set_busy(False)
        for payload in "abc":
            held.setdefault(payload, asyncio.Event()).set()
        await until(lambda: {a, b, c} <= set(d.results), "every job answered", d)
        assert {job: d.results[job] for job in (a, b, c)} == {
            a: ("w3.vines.test", "A"),
            b: ("w3.vines.test", "B"),
            c: ("w3.vines.test", "C"),
        }
        runner.cancel()
        for client in (w3, d):
            await client.disconnect()
