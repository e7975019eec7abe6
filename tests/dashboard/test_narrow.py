"""The dashboard at 80x24 (issue 9): the header lines up with the rows with the server panel
open, nothing is cut without an ellipsis, the footer keeps `s` and `?`, the help box shows its
last sentence, counts read "1 user", and users are not shown as online while reconnecting."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.dashboard.conftest import screen_text
from tests.dashboard.test_layout import board_of
from vinesctl.dashboard.app import Dashboard
from vinesctl.dashboard.model import Board, PresenceEvent

SIZE = (80, 24)


async def test_header_lines_up_with_the_rows_with_the_side_panel_open():
    app = Dashboard(board=board_of(40))  # more rows than fit: the scrollbar takes its room
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await pilot.pause()
        assert app.query_one("#side").display
        lines = screen_text(app).splitlines()
        header = next(line for line in lines if "JID" in line)
        row = next(line for line in lines if "user00000@" in line)
        # each title starts where its column's cells start, and the last cell is whole
        assert header.index("JID") == row.index("user00000@")
        assert header.index("Show") == row.index("online")
        assert header.index("Since") == row.index("05:00:00 ")


async def test_log_lines_end_with_an_ellipsis_when_cut():
    app = Dashboard(board=Board())
    async with app.run_test(size=SIZE) as pilot:
        long = "presence feed gap (seq 12 after 10): restarting the feed " + "x" * 80 + " END"
        app.log_line(long, "warn")  # written while the panel is hidden (below 100 columns)
        await pilot.press("s")
        await pilot.pause()
        text = screen_text(app)
        assert "END" not in text and "presence feed gap" in text
        shown = next(line for line in text.splitlines() if "presence feed gap" in line)
        assert "…" in shown


async def test_footer_keeps_server_and_help_keys():
    app = Dashboard(board=Board())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        for key in (" s ", " ? ", " q "):
            assert key in f" {footer} ", footer


async def test_help_box_shows_its_last_sentence():
    for size in (SIZE, (200, 50)):
        app = Dashboard(board=Board())
        async with app.run_test(size=size) as pilot:
            await pilot.press("question_mark")
            await pilot.pause()
            text = " ".join(" ".join(screen_text(app).split()).split("│"))
            assert "(the status bar says which)." in " ".join(text.split()), size


async def test_counts_are_singular_for_one():
    board = Board()
    board.apply(PresenceEvent("solo@vines.test/phone", stamp=datetime(2026, 1, 1, tzinfo=UTC)))
    app = Dashboard(board=board)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "1 user, 1 session" in app.status_bar.counts
        assert "1 users" not in screen_text(app)


async def test_users_are_not_shown_online_while_reconnecting():
    app = Dashboard(board=board_of(3))
    async with app.run_test(size=SIZE) as pilot:
        app.show_status("live", "live")
        await pilot.pause()
        assert "user00000@" in screen_text(app)
        app.show_status("reconnecting", "disconnected (End of stream); reconnecting in 1s")
        await pilot.pause()
        text = screen_text(app)
        assert "user00000@" not in text and "reconnecting" in text
        app.show_status("live", "live again")
        await pilot.pause()
        assert "user00000@" in screen_text(app)
