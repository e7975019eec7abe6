"""One user: their sessions (resources with show, status, priority, client, since), and from the
server (XEP-0133, where it offers them) the roster size and the last login."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from vinesctl.dashboard.model import SHOW_LABEL, Board, client_name, format_since

Fetcher = Callable[[str], Awaitable[dict[str, str]]]


def sessions_table(board: Board, bare: str) -> Table | Text:
    row = board.get(bare)
    if row is None:
        return Text("offline (no sessions)")
    table = Table(box=None, pad_edge=False, expand=True)
    for name in ("resource", "show", "status", "prio", "client", "since"):
        table.add_column(name)
    for res in sorted(row.resources.values(), key=lambda r: r.name):
        table.add_row(
            res.name or "-",
            SHOW_LABEL.get(res.show, res.show),
            res.status,
            str(res.priority),
            client_name(res.client),
            format_since(res.since),
        )
    return table


class DetailScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("enter", "dismiss", "Close", show=False),
    ]

    def __init__(self, board: Board, bare: str, fetch: Fetcher | None = None) -> None:
        super().__init__()
        self.board = board
        self.bare = bare
        self.fetch = fetch
        self.extra: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="detail"):
            yield Label(Text(self.bare), id="detail-title")
            yield Static(sessions_table(self.board, self.bare), id="detail-sessions")
            yield Static(Text("roster and last login: asking the server..."), id="detail-extra")
            yield Label("esc: close", classes="hint")

    def on_mount(self) -> None:
        if self.fetch is None:
            self._show({"server": "not connected"})
        else:
            self.run_worker(self._load(), exclusive=True)

    async def _load(self) -> None:
        assert self.fetch is not None
        self._show(await self.fetch(self.bare))

    def _show(self, extra: dict[str, str]) -> None:
        self.extra = extra
        text = "\n".join(f"{k:<12} {v}" for k, v in extra.items())
        self.query_one("#detail-extra", Static).update(Text(text))

    def refresh_sessions(self) -> None:
        self.query_one("#detail-sessions", Static).update(sessions_table(self.board, self.bare))
