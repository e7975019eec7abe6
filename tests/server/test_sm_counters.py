"""The XEP-0198 counters and the unacknowledged queue, without I/O (server/xmpp/sm.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vines_server.xmpp import c2s, ns, sm
from vines_server.xmpp.errors import StreamError

from tests.server.test_c2s import header
from tests.server.test_c2s_pipelining import MINE, negotiated
from tests.support.c2s import bind, plain


def entry(n: int) -> sm.Unacked:
    return sm.Unacked(f"<m{n}/>".encode(), None, None)


def test_inbound_wraps_to_zero():
    inbound = sm.Inbound()
    inbound.handled = sm.WRAP - 1
    inbound.count()
    assert inbound.handled == 0


def test_outbound_acks_across_the_wrap_and_refuses_an_h_too_high():
    out = sm.Outbound(max_stanzas=10, max_bytes=1000)
    out.sent = sm.WRAP - 2
    for n in range(4):
        out.push(entry(n))
    assert out.sent == 2 and len(out) == 4
    assert [e.data for e in out.ack(0)] == [b"<m0/>", b"<m1/>"]  # 2^32 mod 2^32
    assert out.ack(0) == []  # the same h again acknowledges nothing more
    with pytest.raises(sm.HandledCountTooHigh) as exc:
        out.ack(3)
    assert exc.value.error.condition == "undefined-condition"
    assert exc.value.error.app == (sm.ns.SM, "handled-count-too-high")
    assert [e.data for e in out.ack(2)] == [b"<m2/>", b"<m3/>"]
    assert out.size == 0


def test_outbound_is_over_past_either_limit_and_asks_for_acks_as_it_grows():
    out = sm.Outbound(max_stanzas=3, max_bytes=1000)
    asks = [out.push(entry(n)) for n in range(sm.REQUEST_EVERY)]
    assert asks == [False] * (sm.REQUEST_EVERY - 1) + [True]
    assert out.over
    by_bytes = sm.Outbound(max_stanzas=100, max_bytes=9)
    by_bytes.push(entry(1))
    assert not by_bytes.over
    by_bytes.push(entry(2))
    assert by_bytes.over


@pytest.mark.parametrize("text", [None, "", "-1", "4294967296", "1.0", " 1", "x", "\u0661"])
def test_h_must_be_an_unsigned_32_bit_integer(text):
    with pytest.raises(StreamError) as exc:
        sm.parse_h(text)
    assert exc.value.condition == "invalid-xml"


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, sm.WRAP - 1), steps=st.lists(st.integers(0, 6), max_size=30))
def test_any_valid_ack_sequence_keeps_sent_minus_acked_queued(start, steps):
    """Pushes and acks in any order, from any starting count: the queue holds exactly the
    stanzas sent and not acknowledged, in order."""
    out = sm.Outbound(max_stanzas=10**6, max_bytes=10**9)
    out.sent = start
    acked, pushed = start, 0
    for step in steps:
        for _ in range(step):
            out.push(entry(pushed))
            pushed += 1
        newly = min(step, len(out))
        acked = (acked + newly) % sm.WRAP
        out.ack(acked)
        assert len(out) == (out.sent - acked) % sm.WRAP
    assert [e.data for e in out.unacked()] == [
        entry(n).data for n in range(pushed - len(out), pushed)
    ]


# ---- the stream's side, sans I/O (through the same driver as the c2s tests) -----------------


def test_the_stream_counts_stanzas_from_enable_and_answers_r_with_h():
    driver = negotiated()
    driver.feed(plain("alice", MINE))
    driver.feed(header())
    driver.feed(bind())
    actions = driver.feed(f"<message to='bob@vines.test'/><enable xmlns='{ns.SM}'/>")
    assert [type(a).__name__ for a in actions] == ["StanzaIn", "SmEnable"]
    actions = driver.feed(
        f"<presence/><iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq><r xmlns='{ns.SM}'/>"
    )
    assert actions[-1] == c2s.SendConfirming(
        sm.answer(2)
    )  # the message before enable does not count
    assert driver.feed(f"<a xmlns='{ns.SM}' h='7'/>") == [c2s.SmAck(7)]
    actions = driver.feed(f"<resume xmlns='{ns.SM}' previd='x' h='0'/>")
    assert actions == [
        c2s.SendConfirming(sm.failed("unexpected-request", 2))
    ]  # bound: nothing to resume
