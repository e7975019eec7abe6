"""The per-connection stanza queue on its own: byte accounting, presence coalescing, the full
state with its hysteresis, and what a close keeps."""

from __future__ import annotations

from vines_server.net.output import OutputQueue, presence_key
from vines_server.xmpp.stanza import make


def presence(sender: str, status: str, ptype: str | None = None):
    attrs = {"from": sender} | ({"type": ptype} if ptype else {})
    return make("{jabber:client}presence", attrs, children=[make("status", text=status)])


def test_a_newer_presence_replaces_the_queued_one_from_the_same_sender():
    queue = OutputQueue(1000)
    queue.push(b"<a/>", key=presence_key(presence("bob@x/1", "away")))
    queue.push(b"<other/>")
    queue.push(b"<b/>", key=presence_key(presence("bob@x/1", "gone", "unavailable")))
    queue.push(b"<c/>", key=presence_key(presence("bob@x/2", "here")))
    # a subscription request is a request, not a state: a later state does not replace it
    queue.push(b"<s/>", key=presence_key(presence("bob@x", "", "subscribe")))
    assert [queue.pop() for _ in range(len(queue))] == [b"<b/>", b"<other/>", b"<c/>", b"<s/>"]
    assert queue.size == 0
    queue.push(b"<d/>", key=presence_key(presence("bob@x/1", "back")))  # popped: queued anew
    assert len(queue) == 1 and queue.size == 4


def test_full_at_the_limit_until_drained_to_half():
    queue = OutputQueue(100)
    for _ in range(4):
        queue.push(b"x" * 30)
    assert queue.full and queue.size == 120
    queue.pop()
    queue.pop()
    assert queue.full  # 60: below the limit, still above half of it
    queue.pop()
    assert not queue.full  # 30
    queue.push(b"x" * 60)
    assert not queue.full  # 90: full again only at the limit


def test_clear_returns_messages_to_keep_and_stream_level_bytes_to_write():
    queue = OutputQueue(1000)
    message = make("{jabber:client}message", {"to": "alice@x"})
    queue.push(b"<message/>", message=message)
    queue.push(b"<iq/>")
    queue.push(b"<presence/>", key=presence_key(presence("bob@x/1", "a")))
    queue.push(b"<stream:error/>", stream_level=True)
    assert queue.clear() == ([message], [b"<stream:error/>"])
    assert len(queue) == 0 and queue.size == 0 and not queue.full
