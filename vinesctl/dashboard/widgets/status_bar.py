"""The status bar: connection state (live, polling, reconnecting), counts, last update."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text
from textual.widgets import Static

STATE_LABEL = {
    "connecting": "● connecting",
    "live": "● live",
    "polling": "● polling",
    "reconnecting": "● reconnecting",
    "failed": "● failed",
}


class StatusBar(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.state = "connecting"
        self.text = "starting"
        self.counts = ""
        self.updated: datetime | None = None

    def set_state(self, state: str, text: str) -> None:
        for old in STATE_LABEL:
            self.remove_class(f"-{old}")
        self.add_class(f"-{state}")
        self.state, self.text = state, text
        self._show()

    def set_counts(self, counts: str, touched: bool = True) -> None:
        self.counts = counts
        if touched:
            self.updated = datetime.now(UTC)
        self._show()

    def _show(self) -> None:
        parts = [f"{STATE_LABEL.get(self.state, self.state)}  {self.text}"]
        if self.counts:
            parts.append(self.counts)
        if self.updated:
            parts.append(f"updated {self.updated.strftime('%H:%M:%S')}")
        self.update(Text(" │ ".join(parts)))
