"""`vinesctl dashboard`: who is online, live, and the server's load.

The `Watcher` (feed.py) runs as a long-lived async worker on Textual's own loop and reports to
`_Bridge`, which updates the board's changed rows only, the event log, the status bar and the
server panel. Once a second a timer adds a point to the sparklines.
"""

from __future__ import annotations

import contextlib
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Input

from vinesctl.dashboard.feed import Watcher
from vinesctl.dashboard.model import Board, Change, EventLog, LoadHistory, LoadSample
from vinesctl.dashboard.screens.detail import DetailScreen
from vinesctl.dashboard.screens.help import HelpScreen
from vinesctl.dashboard.screens.prompt import ConfirmScreen, PromptScreen
from vinesctl.dashboard.widgets.event_log import EventLogView
from vinesctl.dashboard.widgets.presence_table import PresenceTable, TableHeader
from vinesctl.dashboard.widgets.server_panel import ServerPanel
from vinesctl.dashboard.widgets.status_bar import StatusBar
from vinesctl.errors import VinesctlError
from vinesctl.output import counted

NARROW = 100  # columns below which the side panel starts hidden
LOG_BURST = 50  # presence changes logged one by one per update; beyond that, a summary


class _Bridge:
    """The watcher's listener: everything it reports lands in the app."""

    def __init__(self, app: Dashboard) -> None:
        self.app = app

    def changes(self, changes: list[Change]) -> None:
        self.app.apply_changes(changes)

    def status(self, state: str, text: str) -> None:
        self.app.show_status(state, text)

    def load(self, sample: LoadSample | None) -> None:
        self.app.show_load()

    def note(self, text: str, level: str = "info") -> None:
        self.app.log_line(text, level)


class Dashboard(App[int]):
    CSS_PATH = "dashboard.tcss"
    TITLE = "vinesctl dashboard"
    # the footer shows these in order and cuts what does not fit: at 80 columns the keys that
    # bring back what a narrow screen hides (the server panel, help) must come first
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("s", "toggle_side", "Server"),
        Binding("slash", "filter", "Filter"),
        Binding("k", "kick", "Kick"),
        Binding("m", "message", "Message"),
        Binding("a", "announce", "Announce"),
        Binding("l", "toggle_log", "Log"),
    ]
    # every action has its key (listed by `?`); the palette's corner is worth more to the keys
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        settings: Any = None,
        *,
        board: Board | None = None,
        poll_interval: float = 3.0,
        use_feed: bool = True,
        backoff: tuple[float, ...] | None = None,
        timeout: float = 20.0,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.board = board if board is not None else Board()
        self.history = LoadHistory()
        self.events = EventLog()
        self.error: VinesctlError | None = None
        self.watcher: Watcher | None = None
        self._side_forced: bool | None = None
        self._synced = False  # a first snapshot was shown
        if settings is not None:
            options: dict[str, Any] = {"poll_interval": poll_interval, "use_feed": use_feed}
            if backoff:
                options["backoff"] = backoff
            self.watcher = Watcher(
                settings, _Bridge(self), self.board, self.history, timeout=timeout, **options
            )
            self.sub_title = f"{settings.jid} @ {settings.address}"

    # ---- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # The main screen's widgets are kept, not queried: App.query_one looks at the screen
        # on top, and updates keep coming while a detail, help or prompt screen is open.
        self.filter_input = Input(
            placeholder="/ filter: words, show:away, client:gajim", id="filter"
        )
        self.table = PresenceTable(self.board, id="table")
        self.side = Vertical(id="side")
        self.server_panel = ServerPanel(self.history, id="server")
        self.log_view = EventLogView(self.events, id="log")
        self.status_bar = StatusBar(id="status")
        yield Header()
        with Horizontal(id="main"):
            with Vertical(id="users"):
                yield self.filter_input
                self.table.header = TableHeader(id="table-header")
                yield self.table.header
                yield self.table
            with self.side:
                yield self.server_panel
                yield self.log_view
        yield self.status_bar
        yield Footer()

    def on_mount(self) -> None:
        self.table.rebuild()
        self.table.focus()
        self._counts(touched=False)
        self.set_interval(1.0, self._tick)
        if self.watcher is not None:
            self.run_worker(self._watch(), name="presence", group="feed", exclusive=True)
        else:
            self.show_status("live", "offline board (no connection)")

    async def _watch(self) -> None:
        assert self.watcher is not None
        try:
            await self.watcher.run()
        except VinesctlError as exc:
            self.error = exc
            self.exit(1, return_code=1)

    # ---- what the watcher reports ----------------------------------------------------------

    def apply_changes(self, changes: list[Change]) -> None:
        if not changes:
            return
        self.table.update_rows({c.bare for c in changes})
        snapshot = [c for c in changes if c.phase == "snapshot"]
        others = [c for c in changes if c.phase != "snapshot"]
        if snapshot:
            self.log_line(
                f"snapshot: {self._people()} online",
                "info",
            )
            if self._synced:  # a new snapshot (reconnected, or after a gap): what differed
                others = snapshot + others
            self._synced = True
        for change in others[:LOG_BURST]:
            self.events.add_change(change)
        if others[:LOG_BURST]:
            self.log_view.added()
        if len(others) > LOG_BURST:
            self.log_line(f"... and {len(others) - LOG_BURST} more changes", "info")
        self._counts()
        if isinstance(self.screen, DetailScreen) and self.screen.bare in {c.bare for c in changes}:
            self.screen.refresh_sessions()

    def show_status(self, state: str, text: str) -> None:
        self.status_bar.set_state(state, text)
        if state == "reconnecting":  # the status bar shows the latest; the log keeps each one
            self.log_line(text, "warn")
            self.table.set_stale("who is online is unknown while reconnecting")
        elif state in ("live", "polling"):
            self.table.set_stale(None)

    def show_load(self) -> None:
        self.server_panel.show_load()

    def log_line(self, text: str, level: str = "info") -> None:
        self.events.add(text, level)
        self.log_view.added()

    def _counts(self, touched: bool = True) -> None:
        shown = len(self.table.keys)
        text = self._people()
        if self.table.filter_text:
            text += f", {shown} shown"
        self.status_bar.set_counts(text, touched)

    def _people(self) -> str:
        """'1 user, 2 sessions'."""
        return f"{counted(len(self.board), 'user')}, {counted(self.board.sessions, 'session')}"

    def _tick(self) -> None:
        self.history.tick()
        if self.history.current is not None:
            self.show_load()

    # ---- filter ----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.filter_input.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.table.set_query(event.value)
            self._counts(touched=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.table.focus()

    def on_key(self, event: Any) -> None:
        field = self.filter_input
        if event.key == "escape" and self.focused is field:
            field.value = ""  # esc clears the filter (enter keeps it)
            self.table.focus()
            event.stop()

    # ---- details and actions ---------------------------------------------------------------

    def on_presence_table_selected(self, event: PresenceTable.Selected) -> None:
        self.push_screen(DetailScreen(self.board, event.bare, self._details))

    async def _details(self, bare: str) -> dict[str, str]:
        """Sessions, addresses, roster size and last login, as far as the server tells."""
        from vinesctl.xmpp import admin

        client = self.watcher.client if self.watcher else None
        if client is None:
            return {"server": "not connected"}
        out: dict[str, str] = {}
        domain = self.settings.domain
        stats = None
        with contextlib.suppress(VinesctlError):
            stats = await admin.user_stats(client, domain, bare)
        if stats is not None and stats.onlineresources:
            sessions = stats.onlineresources
            out["sessions"] = f"{len(sessions)}: " + ", ".join(sessions)
        if stats is not None and stats.ipaddresses:
            out["addresses"] = ", ".join(stats.ipaddresses)
        if stats is not None and stats.rostersize is not None:
            out["roster"] = f"{stats.rostersize} contacts"
        else:
            try:
                out["roster"] = f"{len(await admin.get_user_roster(client, domain, bare))} contacts"
            except VinesctlError as exc:
                out["roster"] = f"unavailable ({_short(exc)})"
        try:
            out["last login"] = await admin.get_user_lastlogin(client, domain, bare) or "never"
        except VinesctlError as exc:
            out["last login"] = f"unavailable ({_short(exc)})"
        return out

    def _connected(self) -> Any:
        client = self.watcher.client if self.watcher else None
        if client is None:
            self.notify("not connected", severity="warning")
        return client

    def action_kick(self) -> None:
        bare = self.table.selected
        if not bare or self._connected() is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._kick(bare), group="actions")

        self.push_screen(ConfirmScreen(f"End every session of {bare}?"), answered)

    async def _kick(self, bare: str) -> None:
        from vinesctl.xmpp import admin

        client = self._connected()
        if client is None:
            return
        try:
            await admin.end_user_session(client, self.settings.domain, [bare])
        except VinesctlError as exc:
            self.log_line(f"kick {bare} failed: {exc.line()}", "error")
            self.notify(f"kick failed: {_short(exc)}", severity="error")
            return
        self.log_line(f"kicked {bare}", "warn")
        self.notify(f"ended the sessions of {bare}")

    def action_message(self) -> None:
        bare = self.table.selected
        if not bare or self._connected() is None:
            return

        def answered(text: str | None) -> None:
            client = self._connected()
            if text and client is not None:
                client.send_message(mto=bare, mbody=text, mtype="chat")
                self.log_line(f"message to {bare}: {text}")
                self.notify(f"sent to {bare}")

        self.push_screen(PromptScreen(f"Message to {bare}", "text"), answered)

    def action_announce(self) -> None:
        if self._connected() is None:
            return

        def answered(text: str | None) -> None:
            if text:
                self.run_worker(self._announce(text), group="actions")

        self.push_screen(PromptScreen("Announce to every online user", "text"), answered)

    async def _announce(self, text: str) -> None:
        from vinesctl.xmpp import admin

        client = self._connected()
        if client is None:
            return
        try:
            await admin.announce(client, self.settings.domain, text)
        except VinesctlError as exc:
            self.log_line(f"announce failed: {exc.line()}", "error")
            self.notify(f"announce failed: {_short(exc)}", severity="error")
            return
        self.log_line(f"announced: {text}", "warn")
        self.notify("announced")

    def on_resize(self, event: Any) -> None:
        # below 100 columns the table needs the room; `s` brings the panel back
        if self._side_forced is None:
            self.side.display = event.size.width >= NARROW

    def action_toggle_side(self) -> None:
        self.side.display = not self.side.display
        self._side_forced = self.side.display

    def action_toggle_log(self) -> None:
        self.log_view.display = not self.log_view.display

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())


def _short(exc: VinesctlError) -> str:
    return exc.message
