"""The event log: one line per entry of the board's EventLog, drawn at the width the log has
now (a line written while the panel was hidden or wider is not left cut mid-word), and a line
too long for it ends with an ellipsis. Follows the newest entry unless scrolled up."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from vinesctl.dashboard.model import EventLog

LEVEL_STYLE = {"warn": "yellow", "error": "bold red", "presence": "", "info": "cyan"}


class EventLogView(ScrollView):
    def __init__(self, events: EventLog, **kwargs) -> None:
        super().__init__(**kwargs)
        self.events = events

    def entry_text(self, index: int) -> Text:
        entry = self.events.entries[index]
        line = Text(entry.time.strftime("%H:%M:%S "), style="dim", no_wrap=True)
        line.append(entry.text.replace("\n", " "), style=LEVEL_STYLE.get(entry.level, ""))
        return line

    def added(self) -> None:
        """An entry was added: grow, and follow the end if the view was at the end."""
        following = self.scroll_offset.y >= self.max_scroll_y
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.events))
        if following:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = int(self.scroll_offset.y) + y
        if index >= len(self.events) or width <= 0:
            return Strip.blank(width, self.rich_style)
        text = self.entry_text(index)
        text.truncate(width, overflow="ellipsis")
        segments = [
            Segment(seg.text, self.rich_style + (seg.style or Style()))
            for seg in text.render(self.app.console)
            if seg.text != "\n"
        ]
        return Strip(segments).crop_extend(0, width, self.rich_style)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.events))
