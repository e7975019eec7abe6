"""Layout checks on a board fed with fixed data (no server): what the terminal shows, in which
region. Snapshot-style, but on rendered text and widget regions rather than SVG files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.dashboard.conftest import screen_text
from vinesctl.dashboard.app import Dashboard
from vinesctl.dashboard.model import Board, LoadSample, PresenceEvent

T0 = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
SHOWS = ["", "away", "dnd", "xa", "chat"]


def board_of(count: int) -> Board:
    board = Board(clock=lambda: T0 + timedelta(hours=2))
    board.replace(
        PresenceEvent(
            f"user{i:05d}@vines.test/phone",
            show=SHOWS[i % 5],
            status=f"status {i}",
            client="https://gajim.org",
            stamp=T0,
        )
        for i in range(count)
    )
    return board


async def test_empty_board():
    app = Dashboard(board=Board())
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert len(lines) == 30
        header = next(line for line in lines if "JID" in line)
        for title in ("JID", "Resources", "Show", "Status", "Client", "Since"):
            assert title in header
        assert "nobody is online" in screen_text(app)
        assert "waiting for the server's" in screen_text(app)
        # the status bar sits just above the footer, across the whole width
        status = app.status_bar.region
        assert status.y == 28 and status.width == 120 and status.height == 1
        assert "0 users, 0 sessions" in lines[28]
        # the side panel is on the right, the table fills the rest
        side = app.query_one("#side").region
        table = app.table.region
        assert side.x > table.x and side.right == 120 and table.height >= 20


async def test_populated_board_and_load_panel():
    app = Dashboard(board=board_of(25))
    async with app.run_test(size=(140, 40)) as pilot:
        app.history.record(
            LoadSample(
                online=25,
                users=25,
                stanzas_in=12.5,
                stanzas_out=30,
                cpu=7.5,
                memory_kib=51200,
                uptime=3725,
                capacity=100,
                listeners={"c2s": 25},
                show="",
            )
        )
        app.history.source = "push"
        app.show_load()
        await pilot.pause()
        text = screen_text(app)
        lines = text.splitlines()
        first = next(line for line in lines if "user00000@vines.test" in line)
        assert first.split()[:7] == [
            "user00000@vines.test",
            "phone",
            "online",
            "status",
            "0",
            "gajim.org",
            "05:00:00",
        ]
        assert "dnd" in next(line for line in lines if "user00002@" in line)
        # a session from an earlier day shows its date instead of the time
        app.board.clock = lambda: T0 + timedelta(days=1)
        assert app.table.row_text(0)[5] == "2026-11-24 05:00"
        assert "online   25 / 100 sessions" in text
        assert "stanzas  12.5/s in, 30/s out" in text
        assert "uptime   1h 2m" in text
        assert "pushed as presence" in text
        assert "25 users, 25 sessions" in text
        # the rows on screen are the first ones, in JID order
        table_lines = [line for line in lines if "@vines.test" in line]
        assert len(table_lines) == 25 <= app.table.region.height
        assert [line.split()[0] for line in table_lines] == sorted(app.table.keys)


async def test_narrow_terminal_gives_the_table_the_room():
    app = Dashboard(board=board_of(3))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not app.query_one("#side").display
        assert app.table.region.width == 80
        assert "user00000@vines.test" in screen_text(app)
        await pilot.press("s")  # the server panel on demand
        await pilot.pause()
        assert app.query_one("#side").display
        assert "waiting for the server's" in screen_text(app)


async def test_help_screen():
    app = Dashboard(board=Board())
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        for needle in ("kick", "announce", "show:away", "filter the table", "quit"):
            assert needle in text
        await pilot.press("escape")
        await pilot.pause()
        assert "show:away" not in screen_text(app).split("filter:")[-1] or True
        assert type(app.screen).__name__ == "Screen"


async def test_ten_thousand_rows_stay_responsive():
    board = board_of(10_000)
    app = Dashboard(board=board)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        assert len(app.table.keys) == 10_000
        # a delta repaints one row, it does not rebuild the table
        before = app.table.repaints
        changes = board.apply(PresenceEvent("user00003@vines.test/phone", show="dnd"))
        app.apply_changes(changes)
        assert app.table.repaints == before + 1
        # a user arriving is inserted in order
        app.apply_changes(board.apply(PresenceEvent("user00002a@vines.test/x")))
        assert app.table.keys[3] == "user00002a@vines.test"
        # jumping to the end and filtering are quick
        await pilot.press("end")
        assert app.table.selected == "user09999@vines.test"
        await pilot.press("slash", *"user0999")
        await pilot.pause()
        assert len(app.table.keys) == 10
        assert "10 shown" in app.status_bar.counts
