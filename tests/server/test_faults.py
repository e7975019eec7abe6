"""A fault answers the stanza that caused it and the sender's stream stays open: a module
handler that raises (iq, presence, message), and a store that is full (SQLite's
`max_page_count` makes a real SQLITE_FULL) under the router's own offline storage."""

from __future__ import annotations

import logging
import re

import pytest
from vines_server.xmpp.errors import StanzaError

from tests.support.xmpp import DOMAIN, RawClient, raw_login

BOOM = "urn:test:boom"


async def still_open(raw: RawClient, iq_id: str = "alive") -> None:
    """The stream answers a ping after the fault: it was not closed."""
    await raw.send(f"<iq type='get' id='{iq_id}' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
    reply = await raw.read_until(rf"<iq[^>]*id='{iq_id}'[^>]*>".encode())
    assert b"type='result'" in reply


def error_of(data: bytes) -> tuple[str, str]:
    """(error type, condition) of the first stanza error in `data`."""
    match = re.search(
        rb"<error type='(\w+)'[^>]*>\s*<([\w-]+) xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'", data
    )
    assert match, data
    return match.group(1).decode(), match.group(2).decode()


def one_line_cause(caplog: pytest.LogCaptureFixture, cause: str) -> None:
    lines = [
        r
        for r in caplog.records
        if r.name == "vines_server.core.routing" and r.levelno >= logging.ERROR
    ]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert cause in lines[0].getMessage() and lines[0].exc_info is None


def faulty_module(harness):
    """A module the test loads through the API, whose handlers raise."""
    api = harness.server.host.api("faulty")

    async def iq(req):
        raise RuntimeError("boom in an iq handler")

    def presence(stanza, to, origin):
        if stanza.get("type") == "subscribe":
            raise RuntimeError("boom in a presence handler")
        return False

    async def message(stanza, to, origin):
        if stanza.findtext("{jabber:client}body") == "boom":
            raise RuntimeError("boom in a message handler")
        return False

    api.iq(BOOM, iq, server=True)
    api.on("presence", presence, priority=10)
    api.on("message/account", message, priority=10)
    return api


RAISING = [
    (
        "iq",
        f"<iq type='get' id='f1' to='{DOMAIN}'><query xmlns='{BOOM}'/></iq>",
        "boom in an iq handler",
    ),
    (
        "presence",
        f"<presence type='subscribe' id='f1' to='bob@{DOMAIN}'/>",
        "boom in a presence handler",
    ),
    (
        "message",
        f"<message type='chat' id='f1' to='bob@{DOMAIN}'><body>boom</body></message>",
        "boom in a message handler",
    ),
]


@pytest.mark.parametrize(("kind", "stanza", "cause"), RAISING, ids=[r[0] for r in RAISING])
async def test_a_raising_handler_answers_internal_server_error(
    harness, caplog, kind: str, stanza: str, cause: str
):
    faulty_module(harness)
    raw = await raw_login(harness, "alice")
    await raw.send("<presence/>")  # a bounce to alice's bare JID reaches available sessions
    await raw.send(stanza)
    reply = await raw.read_until(rf"<{kind}[^>]*id='f1'.*?</{kind}>".encode())
    assert b"type='error'" in reply and error_of(reply) == ("cancel", "internal-server-error")
    await still_open(raw)
    one_line_cause(caplog, cause)
    raw.close()


async def test_a_handler_refusing_with_a_stanza_error_is_answered_with_it(harness):
    api = harness.server.host.api("picky")

    def refuse(stanza, to, origin):
        raise StanzaError("policy-violation", "not today")

    api.on("message/account", refuse, priority=10)
    raw = await raw_login(harness, "alice")
    await raw.send(f"<message type='chat' id='m2' to='bob@{DOMAIN}'><body>hi</body></message>")
    reply = await raw.read_until(rb"<message[^>]*id='m2'.*?</message>")
    assert error_of(reply)[1] == "policy-violation" and b"not today" in reply
    await still_open(raw)
    raw.close()


async def test_a_full_store_answers_resource_constraint_and_keeps_what_was_committed(
    harness, caplog
):
    storage = harness.server.storage
    raw = await raw_login(harness, "alice")
    await raw.send(f"<message type='chat' to='mallory@{DOMAIN}'><body>first</body></message>")
    await still_open(raw, "stored")  # in order: the first message is stored by now

    def no_more_pages() -> None:  # on the store's own connection: a real SQLITE_FULL
        conn = storage._conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    await storage._run(no_more_pages)
    big = "x" * 20_000  # needs pages the store may not take
    await raw.send(
        f"<message type='chat' id='m3' to='mallory@{DOMAIN}'><body>{big}</body></message>"
    )
    reply = await raw.read_until(rb"<message[^>]*id='m3'.*?</message>")
    assert b"type='error'" in reply and error_of(reply) == ("wait", "resource-constraint")
    await still_open(raw)
    one_line_cause(caplog, "full")
    raw.close()

    await storage._run(lambda: storage._conn.execute("PRAGMA max_page_count = 1073741823"))
    kept = await storage.pop_offline(f"mallory@{DOMAIN}")
    assert [b"first" in m.xml.encode() for m in kept] == [True]
