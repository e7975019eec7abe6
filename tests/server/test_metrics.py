"""The OpenMetrics endpoint of a live server, scraped over HTTP and parsed with
prometheus_client's own parsers: the figures move with what clients do."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.support.xmpp import DOMAIN, disconnect, running_server, slixmpp_client


async def scrape(harness, openmetrics: bool = False) -> dict[tuple[str, tuple], float]:
    port = harness.port("metrics")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if openmetrics:
        request.add_header("Accept", "application/openmetrics-text; version=1.0.0")

    def get() -> tuple[str, str]:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.headers["Content-Type"], answer.read().decode()

    content_type, text = await asyncio.to_thread(get)  # never in the server's event loop
    assert content_type.startswith("application/openmetrics-text" if openmetrics else "text/plain")
    families = (parse_om if openmetrics else parse_text)(text)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def mechanisms(samples, result: str) -> float:
    return sum(
        v for (n, labels), v in samples.items()
        if n == "vines_logins_total" and ("result", result) in labels
    )  # fmt: skip


async def test_metrics_move(tmp_path, pki):
    async with running_server(tmp_path, pki, metrics={"port": 0}) as h:
        await h.add_user("alice")
        await h.add_user("bob")
        before = await scrape(h)
        assert mechanisms(before, "ok") == 0
        assert value(before, "vines_sessions", listener="c2s", state="bound") == 0
        assert value(before, "process_resident_memory_bytes") > 0
        assert ("vines_event_loop_lag_seconds", ()) in before

        alice = await slixmpp_client(h, f"alice@{DOMAIN}")
        try:
            with pytest.raises(ConnectionError):
                await slixmpp_client(h, f"bob@{DOMAIN}", "wrong password")
            after_login = await scrape(h)
            assert mechanisms(after_login, "ok") == 1
            # slixmpp tries its next mechanism after a failure: one failed login or more
            assert mechanisms(after_login, "failed") >= 1
            assert value(after_login, "vines_sessions", listener="c2s", state="bound") == 1

            # bob is offline: the message is stored, and counted in and stored
            alice.send_message(mto=f"bob@{DOMAIN}", mbody="hi", mtype="chat")
            await wait_for_change(h, "vines_offline_messages_stored_total", 0)
            after_message = await scrape(h, openmetrics=True)
            # OpenMetrics names counter samples the same way
            assert value(after_message, "vines_stanzas_in_total", kind="message") >= 1
            assert value(after_message, "vines_offline_messages_stored_total") == 1
            assert (
                value(after_message, "vines_store_operation_seconds_count", operation="get_account")
                >= 2
            )
        finally:
            await disconnect(alice)


async def wait_for_change(h, name: str, old: float) -> None:
    for _ in range(200):
        if value(await scrape(h), name) != old:
            return
    raise AssertionError(f"{name} stayed {old}")


async def test_no_endpoint_by_default(tmp_path, pki):
    async with running_server(tmp_path, pki) as h:
        assert h.server.metrics is None
        assert [li.kind for li in h.server.listening if li.kind == "metrics"] == []
