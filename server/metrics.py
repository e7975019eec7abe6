"""The OpenMetrics endpoint (`[metrics] port`): GET /metrics for Prometheus.

Names follow Prometheus conventions (base units, `_total` for counters), with a `vines_` prefix,
as Prosody's mod_http_openmetrics does with `prosody_`:

- vines_sessions{listener,state}: open streams (negotiating, authenticated, bound)
- vines_stanzas_in_total{kind} / vines_stanzas_out_total{kind}: routed in, delivered out
- vines_logins_total{mechanism,result}: SASL outcomes (ok, failed)
- vines_offline_messages_stored_total: messages kept for offline accounts
- vines_store_operation_seconds{operation}: store latency (histogram)
- vines_event_loop_lag_seconds: how late the last timer fired
- process_*: CPU, memory, file descriptors, start time (prometheus-client's own collector)

The HTTP side is prometheus-client's threaded server (it parses HTTP and negotiates OpenMetrics
or the text format), so a scrape never runs in the event loop. What the loop owns (connections,
the router's counters) is read in the loop, through run_coroutine_threadsafe, never from the
HTTP thread; the counters updated from the loop are prometheus-client's thread-safe ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

if TYPE_CHECKING:
    from vines_server.server import Server
    from vines_server.storage.base import Storage

log = logging.getLogger(__name__)

LAG_INTERVAL = 0.5  # seconds between two event-loop lag samples
SNAPSHOT_TIMEOUT = 5.0  # seconds a scrape waits for the loop (a stopping server answers less)
# store calls take ~0.1 ms (memory) to tens of ms (SQLite with fsync): buckets spanning both
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self, server: Server) -> None:
        self._server = server
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.logins = Counter(
            "vines_logins",
            "SASL authentications by mechanism and result",
            ["mechanism", "result"],
            registry=self.registry,
        )
        self.offline_stored = Counter(
            "vines_offline_messages_stored",
            "Messages stored for accounts that were offline",
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "vines_store_operation_seconds",
            "Time a store operation took",
            ["operation"],
            buckets=STORE_BUCKETS,
            registry=self.registry,
        )
        self.loop_lag = Gauge(
            "vines_event_loop_lag_seconds",
            f"How much later than due a {LAG_INTERVAL} s timer last fired",
            registry=self.registry,
        )
        self._state = _LoopState(server)
        self.registry.register(self._state)
        hooks = server.host.hooks
        hooks.on("auth/succeeded", lambda mechanism: self.logins.labels(mechanism, "ok").inc())
        hooks.on("auth/failed", lambda mechanism: self.logins.labels(mechanism, "failed").inc())
        self._http: list[tuple[Any, Any]] = []
        self._lag_task: asyncio.Task[None] | None = None

    def timed(self, storage: Storage) -> Storage:
        """`storage` with every call timed (and stored offline messages counted)."""
        return _TimedStorage(storage, self)  # type: ignore[return-value]

    async def serve(self, hosts: tuple[str, ...], port: int) -> list[tuple[str, int]]:
        """Listen on each of `hosts`; the (host, port) pairs listened on."""
        self._state.loop = asyncio.get_running_loop()
        listening = []
        for host in hosts:
            httpd, thread = await asyncio.to_thread(start_http_server, port, host, self.registry)
            self._http.append((httpd, thread))
            listening.append((host, httpd.server_port))
        self._lag_task = asyncio.ensure_future(self._sample_lag())
        return listening

    async def stop(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
        for httpd, thread in self._http:
            await asyncio.to_thread(_shut, httpd, thread)
        self._http.clear()

    async def _sample_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LAG_INTERVAL
            await asyncio.sleep(LAG_INTERVAL)
            self.loop_lag.set(max(0.0, loop.time() - due))


def _shut(httpd: Any, thread: Any) -> None:
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


class _TimedStorage:
    """A transparent proxy: coroutine methods are timed into the histogram."""

    def __init__(self, storage: Storage, metrics: Metrics) -> None:
        self._storage = storage
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._storage, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        histogram = self._metrics.store_seconds.labels(name)

        @functools.wraps(attr)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await attr(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)
            if name == "store_offline":
                self._metrics.offline_stored.inc()
            return result

        return timed


class _LoopState:
    """Sessions and stanza counts, read in the event loop at each scrape."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self.loop: asyncio.AbstractEventLoop | None = None  # set when the endpoint listens

    def describe(self) -> list[Metric]:
        return []  # collected per scrape only (no loop to ask at registration)

    def collect(self) -> Iterator[Metric]:
        if self.loop is None or self.loop.is_closed():
            return
        try:
            sessions, kinds_in, kinds_out = asyncio.run_coroutine_threadsafe(
                self._snapshot(), self.loop
            ).result(SNAPSHOT_TIMEOUT)
        except Exception as exc:  # a stopping server: the other metrics still answer
            log.debug("metrics: no snapshot from the event loop: %s", exc)
            return
        gauge = GaugeMetricFamily(
            "vines_sessions", "Open client streams by listener and state",
            labels=["listener", "state"],
        )  # fmt: skip
        for (listener, state), count in sorted(sessions.items()):
            gauge.add_metric([listener, state], count)
        yield gauge
        for direction, kinds in (("in", kinds_in), ("out", kinds_out)):
            counter = CounterMetricFamily(
                f"vines_stanzas_{direction}",
                f"Stanzas {'routed in' if direction == 'in' else 'delivered out'} by kind",
                labels=["kind"],
            )
            for kind, count in sorted(kinds.items()):
                counter.add_metric([kind], count)
            yield counter

    async def _snapshot(self) -> tuple[dict[tuple[str, str], int], dict[str, int], dict[str, int]]:
        sessions: dict[tuple[str, str], int] = {}
        for conn in self._server.connections:
            if conn.session is not None:
                state = "bound"
            elif getattr(conn.stream, "jid", None) is not None:
                state = "authenticated"
            else:
                state = "negotiating"
            key = (str(conn.info.get("listener", "?")), state)
            sessions[key] = sessions.get(key, 0) + 1
        router = self._server.router
        return sessions, _by_kind(router.kinds_in), _by_kind(router.kinds_out)


def _by_kind(counts: dict[str, int]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for tag, count in counts.items():
        kind = tag.rpartition("}")[2]
        kind = kind if kind in ("message", "presence", "iq") else "other"
        kinds[kind] = kinds.get(kind, 0) + count
    return kinds
