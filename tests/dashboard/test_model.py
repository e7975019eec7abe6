"""The pure presence board: events in, rows and changes out; feed sequence checks; load history;
the event log; the wire parsing of feed messages (ElementTree only, no connection)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import fromstring

from vinesctl.dashboard.model import (
    Board,
    EventLog,
    FeedTracker,
    LoadHistory,
    LoadSample,
    PresenceEvent,
    client_name,
)
from vinesctl.xmpp.presence import parse_feed, parse_load

T0 = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)


def ev(jid, available=True, show="", status="", priority=0, client="", at=0):
    return PresenceEvent(jid, available, show, status, priority, client, T0 + timedelta(seconds=at))


def kinds(changes):
    return [(c.kind, c.jid) for c in changes]


def test_sessions_come_change_and_go():
    board = Board()
    assert kinds(board.apply(ev("alice@x/phone"))) == [("online", "alice@x/phone")]
    assert kinds(board.apply(ev("alice@x/desk", at=5))) == [("online", "alice@x/desk")]
    assert len(board) == 1 and board.sessions == 2
    row = board.get("alice@x")
    assert row.cells(T0)[:2] == ("alice@x", "desk, phone")
    assert row.since == T0
    # a status change keeps the session's since
    changes = board.apply(ev("alice@x/phone", show="away", status="lunch", at=9))
    assert kinds(changes) == [("changed", "alice@x/phone")]
    assert row.resources["phone"].since == T0
    # the same presence again changes nothing
    assert board.apply(ev("alice@x/phone", show="away", status="lunch", at=10)) == []
    assert kinds(board.apply(ev("alice@x/desk", available=False))) == [("offline", "alice@x/desk")]
    assert kinds(board.apply(ev("alice@x/phone", available=False))) == [
        ("offline", "alice@x/phone")
    ]
    assert len(board) == 0
    # unavailable for a session we never saw: nothing
    assert board.apply(ev("bob@x/a", available=False)) == []


def test_best_resource_speaks_for_the_user():
    board = Board()
    board.apply(ev("a@x/1", show="dnd", status="busy", priority=5))
    board.apply(ev("a@x/2", show="chat", status="hi", priority=0, client="https://gajim.org"))
    row = board.get("A@X")
    assert (row.show, row.status) == ("dnd", "busy")  # higher priority wins
    board.apply(ev("a@x/1", show="dnd", status="busy", priority=-1))
    assert (row.show, row.status) == ("chat", "hi")
    assert row.client == "gajim.org"


def test_snapshot_replaces_the_board_and_reports_the_difference():
    board = Board()
    board.apply(ev("gone@x/r"))
    board.apply(ev("stays@x/r", status="same"))
    board.apply(ev("moves@x/r", status="old"))
    board.begin_snapshot()
    board.add_snapshot([ev("stays@x/r", status="same"), ev("moves@x/r", status="new")])
    board.add_snapshot([ev("new@x/r", at=3)])
    assert len(board) == 3  # nothing changes until the snapshot ends
    changes = board.end_snapshot()
    assert sorted(kinds(changes)) == [
        ("changed", "moves@x/r"),
        ("offline", "gone@x/r"),
        ("online", "new@x/r"),
    ]
    assert {c.phase for c in changes} == {"snapshot"}
    assert board.matching() == ["moves@x", "new@x", "stays@x"]


def test_empty_snapshot_empties_the_board():
    board = Board()
    board.apply(ev("a@x/r"))
    board.begin_snapshot()
    assert kinds(board.end_snapshot()) == [("offline", "a@x/r")]
    assert len(board) == 0


def test_poll_keeps_since_of_known_sessions():
    board = Board()
    board.replace([PresenceEvent("a@x/r", stamp=T0)])
    changes = board.replace([PresenceEvent("a@x/r"), PresenceEvent("b@x")])
    assert kinds(changes) == [("online", "b@x")]
    assert board.get("a@x").since == T0
    assert board.get("b@x").cells()[1] == "-"  # no resource known


def test_filter_and_search():
    board = Board()
    board.apply(ev("alice@x/phone", show="away", status="At lunch"))
    board.apply(ev("bob@x/desk", client="https://gajim.org"))
    board.apply(ev("carol@y/web", show="dnd"))
    assert board.matching("") == ["alice@x", "bob@x", "carol@y"]
    assert board.matching("LUNCH") == ["alice@x"]
    assert board.matching("show:away") == ["alice@x"]
    assert board.matching("show:online") == ["bob@x"]
    assert board.matching("client:gajim") == ["bob@x"]
    assert board.matching("@x") == ["alice@x", "bob@x"]
    assert board.matching("@x desk") == ["bob@x"]
    assert board.matching("nobody") == []


def test_change_lines_and_json():
    board = Board()
    (change,) = board.apply(ev("a@x/r", show="away", status="back soon", priority=3))
    assert change.line() == "05:00:00 online  a@x/r  away 'back soon' prio=3"
    data = change.as_json()
    assert data == {
        "time": "2026-11-24T05:00:00Z",
        "event": "online",
        "jid": "a@x/r",
        "phase": "delta",
        "show": "away",
        "status": "back soon",
        "priority": 3,
        "client": None,  # absent: null, not ""
    }
    (gone,) = board.apply(ev("a@x/r", available=False))
    assert set(gone.as_json()) == {"time", "event", "jid", "phase"}


def test_feed_tracker_sequence():
    tracker = FeedTracker()
    assert tracker.check("f", 1, "snapshot") == "stale"  # no feed started yet
    tracker.start("f")
    assert tracker.check("f", 1, "snapshot") == "ok"
    assert tracker.check("f", 2, "snapshot", last=True) == "ok"
    assert tracker.check("f", 2, "delta") == "duplicate"
    assert tracker.check("other", 3, "delta") == "stale"
    assert tracker.check("f", 3, "delta") == "ok"
    assert tracker.check("f", 5, "delta") == "gap"
    assert tracker.gaps == 1


def test_feed_tracker_wants_the_snapshot_first():
    tracker = FeedTracker()
    tracker.start("f")
    assert tracker.check("f", 2, "snapshot") == "gap"  # seq 1 was lost
    tracker.start("g")
    assert tracker.check("g", 1, "delta") == "gap"  # a delta before the snapshot ended
    tracker.start("h")
    assert tracker.check("h", 1, "snapshot", last=True) == "ok"
    assert tracker.check("h", 2, "snapshot") == "gap"  # a snapshot after it ended


def test_load_history_for_sparklines():
    history = LoadHistory(length=3)
    assert history.current is None and list(history.online) == []
    history.record(LoadSample(online=5, stanzas_in=1.5, stanzas_out=2.5))
    assert list(history.online) == [5.0] and list(history.rate) == [4.0]
    history.record(LoadSample(online=7))
    history.tick()
    history.tick()
    history.tick()
    assert list(history.online) == [7.0, 7.0, 7.0]  # bounded


def test_event_log_is_a_ring_buffer():
    log = EventLog(size=3)
    for i in range(5):
        log.add(f"entry {i}")
    assert [e.text for e in log] == ["entry 2", "entry 3", "entry 4"]
    assert log.total == 5
    board = Board()
    (change,) = board.apply(ev("a@x/r"))
    assert log.add_change(change).text == "online  a@x/r  online"


def test_client_names():
    assert client_name("http://slixmpp.com/ver/1.17") == "slixmpp.com"
    assert client_name("https://gajim.org") == "gajim.org"
    assert client_name("") == ""


FEED = """<feed xmlns='urn:vinesctl:presence-feed:0' id='F1' seq='3' kind='delta'>
  <forwarded xmlns='urn:xmpp:forward:0'>
    <delay xmlns='urn:xmpp:delay' stamp='2026-11-24T05:00:01.250Z'/>
    <presence xmlns='jabber:client' from='alice@x/phone'>
      <show>away</show><status>lunch</status><priority>5</priority>
      <c xmlns='http://jabber.org/protocol/caps' node='https://gajim.org' ver='x' hash='sha-1'/>
    </presence>
  </forwarded>
  <forwarded xmlns='urn:xmpp:forward:0'>
    <delay xmlns='urn:xmpp:delay' stamp='2026-11-24T05:00:02Z'/>
    <presence xmlns='jabber:client' from='bob@x/desk' type='unavailable'/>
  </forwarded>
</feed>"""


def test_parse_feed_message():
    message = parse_feed(fromstring(FEED))
    assert (message.id, message.seq, message.kind, message.last) == ("F1", 3, "delta", False)
    alice, bob = message.events
    assert alice == PresenceEvent(
        "alice@x/phone",
        True,
        "away",
        "lunch",
        5,
        "https://gajim.org",
        datetime(2026, 11, 24, 5, 0, 1, 250000, tzinfo=UTC),
    )
    assert not bob.available and bob.resource == "desk"
    ns = "xmlns='urn:vinesctl:presence-feed:0'"
    last = parse_feed(fromstring(f"<feed {ns} id='F' seq='1' kind='snapshot' last='true'/>"))
    assert last.last and last.events == []
    assert (
        parse_feed(
            fromstring("<feed xmlns='urn:vinesctl:presence-feed:0' id='F' seq='x' kind='delta'/>")
        )
        is None
    )


def test_parse_load():
    el = fromstring(
        "<load xmlns='urn:vinesctl:load:0' online='3' users='2' stanzas_in='1.5' stanzas_out='2'"
        " cpu='4.5' memory_kib='51200' uptime='60' capacity='100'>"
        "<listener name='c2s' connections='3'/><listener name='c2s-direct' connections='1'/></load>"
    )
    load = parse_load(el, "away", "3 online")
    assert (load.online, load.users, load.rate, load.cpu, load.capacity) == (3, 2, 3.5, 4.5, 100)
    assert load.listeners == {"c2s": 3, "c2s-direct": 1}
    assert (load.show, load.status) == ("away", "3 online")


def test_online_users_list_lines():
    from vinesctl.xmpp.presence import parse_online_lines

    # plain XEP-0133: one JID per value
    assert [e.jid for e in parse_online_lines(["a@x", "b@x"])] == ["a@x", "b@x"]
    # Prosody with details: a text-multi, with a line per session
    prosody = "alice@x\n - phone: away(5), IP: [127.0.0.1]\n - desk: available(0), IP: [::1]\nbob@x"
    events = parse_online_lines([prosody])
    assert [(e.jid, e.show, e.priority) for e in events] == [
        ("alice@x/phone", "away", 5),
        ("alice@x/desk", "", 0),
        ("bob@x", "", 0),
    ]
    # users already known from a reported table are skipped
    assert [e.jid for e in parse_online_lines([prosody], skip={"alice@x"})] == ["bob@x"]


def test_load_text_has_a_line_per_node_even_before_the_load():
    from vinesctl.dashboard.widgets.server_panel import load_text
    from vinesctl.xmpp.admin_results import ClusterNode

    nodes = [
        ClusterNode("n1-1", "127.0.0.1:5222", 0.4, True, 12, 3.5, 100),
        ClusterNode("n1-2", "127.0.0.1:5222", 9.0, False, 0, None, 101),
    ]
    lines = load_text(None, "waiting", nodes).splitlines()
    assert lines[-2:] == ["node n1-1: 12 sessions, 3.5% cpu", "node n1-2: gone"]
    assert load_text(None, "none", []).splitlines()[0] == "load unavailable:"
