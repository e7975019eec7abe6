"""The help screen: keys and the filter syntax."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

# short enough that the box fits 80x24 without wrapping a line (a test renders it there)
KEYS = (
    ("↑ ↓ PgUp PgDn Home End", "move in the table"),
    ("enter / double click", "details of the selected user"),
    ("/", "filter the table (enter keeps it, esc clears)"),
    ("k", "kick: end the user's sessions (XEP-0133)"),
    ("m", "send the selected user a message"),
    ("a", "announce to every online user (XEP-0133)"),
    ("s", "server panel (hidden below 100 columns)"),
    ("l", "show or hide the event log"),
    ("?", "this help"),
    ("q", "quit"),
)
FILTER = (
    ("alice lunch", "every word: JID, resource, status, client"),
    ("show:away", "presence: online, chat, away, xa or dnd"),
    ("client:gajim", "users with that client"),
)


def keys_table() -> Table:
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, what in KEYS:
        table.add_row(key, what)
    table.add_row(Text("filter", style="underline"), "")
    for example, what in FILTER:
        table.add_row(example, what)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Label("vinesctl dashboard: keys", id="help-title")
            yield Static(keys_table(), id="help-keys")
            yield Label(
                "Presence is pushed by the server's feed; against servers without it the "
                "online users list is polled (the status bar says which).",
                classes="hint",
            )
