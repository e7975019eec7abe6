"""The table of online users: a Line API widget over the board.

It keeps only the sorted list of the bare JIDs that match the filter and renders the lines on
screen from the board, so 10 000 rows cost what the visible ones cost. `update_rows(bares)`
repaints the rows of those users if they are on screen, inserting or removing rows only when a
user comes, goes, or stops/starts matching the filter.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from vinesctl.dashboard.model import Board, make_filter

COLUMNS = ("JID", "Resources", "Show", "Status", "Client", "Since")
SHOW_STYLE = {
    "online": Style(color="green"),
    "chat": Style(color="bright_green", bold=True),
    "away": Style(color="yellow"),
    "xa": Style(color="dark_orange"),
    "dnd": Style(color="red"),
}


def widths(total: int) -> list[int]:
    """Column widths (each with one space of separation) for a table `total` cells wide: show
    and since fixed, the JID first to grow, then status, resources and client."""
    show, since = 7, 9
    rest = max(total - show - since, 24)

    def share(part: float, low: int, high: int) -> int:
        return max(low, min(high, int(rest * part)))

    jid = share(0.36, 14, 40)
    resources = share(0.16, 10, 18)
    client = share(0.14, 8, 16) if rest >= 50 else 0
    status = max(rest - jid - resources - client, 6)
    return [jid, resources, show, status, client, since]


def cell(text: str, width: int) -> str:
    """`text` in exactly `width` cells: truncated with an ellipsis, one space after it."""
    text = text.replace("\n", " ")
    if width <= 1:
        return " " * width
    inner = width - 1
    if len(text) > inner:
        text = text[: max(inner - 1, 0)] + "…"
    return set_cell_size(text, inner) + " "


class TableHeader(Static):
    """The column titles, laid out like the rows below: for the width the table's rows get
    (which the table tells, see `PresenceTable.header`), not its own."""

    def render_titles(self, total: int) -> str:
        return "".join(cell(name, w) for name, w in zip(COLUMNS, widths(total), strict=True))

    def align(self, total: int) -> None:
        self.update(self.render_titles(total))


class PresenceTable(ScrollView, can_focus=True):
    """Online users, one line each, sorted by JID; a cursor selects one."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Details", show=False),  # in the help; the footer is short
    ]
    COMPONENT_CLASSES = {"presence-table--cursor", "presence-table--empty"}

    cursor = reactive(0, always_update=True)

    class Selected(Message):
        """Enter (or a double click) on a user."""

        def __init__(self, bare: str) -> None:
            self.bare = bare
            super().__init__()

    def __init__(self, board: Board, **kwargs) -> None:
        super().__init__(**kwargs)
        self.board = board
        self.keys: list[str] = []  # bare JIDs shown, sorted
        self.filter_text = ""
        self._match = make_filter("")
        self.repaints = 0  # rows repainted in place (for tests)
        self.header: TableHeader | None = None  # titles kept in line with the rows
        self.stale: str | None = None  # why the board is not to be trusted now (no rows shown)

    def set_stale(self, why: str | None) -> None:
        """While the connection is down the board is old news: show `why`, not the users."""
        if why != self.stale:
            self.stale = why
            self.refresh()

    @property
    def row_width(self) -> int:
        """Cells a row gets: the width inside the padding and the scrollbar gutter."""
        return self.scrollable_content_region.width

    def _align_header(self) -> None:
        if self.header is not None:
            self.header.align(self.row_width)

    # ---- data ------------------------------------------------------------------------------

    @property
    def selected(self) -> str | None:
        return self.keys[self.cursor] if 0 <= self.cursor < len(self.keys) else None

    def set_query(self, query: str) -> None:
        self.filter_text = query
        self._match = make_filter(query)
        self.rebuild()

    def rebuild(self) -> None:
        keep = self.selected
        self.keys = self.board.matching(self.filter_text)
        self._resized(keep)

    def update_rows(self, bares: Iterable[str]) -> None:
        """The board changed these users: repaint, insert or remove their rows."""
        bares = set(bares)
        if len(bares) > 1000:
            self.rebuild()
            return
        keep = self.selected
        structural = False
        top = int(self.scroll_offset.y)
        bottom = top + self.size.height
        for bare in bares:
            row = self.board.get(bare)
            wanted = row is not None and self._match(row)
            index = bisect_left(self.keys, bare)
            present = index < len(self.keys) and self.keys[index] == bare
            if wanted and present:
                if top <= index < bottom:
                    self.refresh_line(index)
                    self.repaints += 1
            elif wanted:
                self.keys.insert(index, bare)
                structural = True
            elif present:
                del self.keys[index]
                structural = True
        if structural:
            self._resized(keep)

    def _resized(self, keep: str | None) -> None:
        self.virtual_size = Size(self.size.width, len(self.keys))
        if keep is not None:
            index = bisect_left(self.keys, keep)
            if index < len(self.keys) and self.keys[index] == keep:
                self.cursor = index
            else:
                self.cursor = min(self.cursor, max(len(self.keys) - 1, 0))
        else:
            self.cursor = min(self.cursor, max(len(self.keys) - 1, 0))
        self._align_header()
        self.refresh()

    def row_text(self, index: int) -> tuple[str, ...]:
        """The cells of row `index` as shown (for tests and the detail view)."""
        row = self.board.get(self.keys[index])
        return row.cells(self.board.clock()) if row else ()

    # ---- rendering -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.row_width
        index = int(self.scroll_offset.y) + y
        base = self.rich_style
        if self.stale is not None:
            if y:
                return Strip.blank(width, base)
            style = self.get_component_rich_style("presence-table--empty")
            return Strip([Segment(cell(self.stale, width), style)], width)
        if index >= len(self.keys):
            if not self.keys and y == 0:
                style = self.get_component_rich_style("presence-table--empty")
                text = "nobody matches the filter" if self.filter_text else "nobody is online"
                return Strip([Segment(cell(text, width), style)], width)
            return Strip.blank(width, base)
        row = self.board.get(self.keys[index])
        if row is None:
            return Strip.blank(width, base)
        cells = row.cells(self.board.clock())
        style = base
        if index == self.cursor and self.has_focus:
            style = base + self.get_component_rich_style("presence-table--cursor")
        elif index == self.cursor:
            style = base + Style(reverse=True, dim=True)
        segments = []
        for i, (text, w) in enumerate(zip(cells, widths(width), strict=True)):
            cell_style = style
            if i == 2:
                cell_style = style + SHOW_STYLE.get(text, Style())
            elif i == 0:
                cell_style = style + Style(bold=True)
            segments.append(Segment(cell(text, w), cell_style))
        return Strip(segments).crop_extend(0, width, style)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.keys))
        self._align_header()

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old)
        self.refresh_line(new)
        self._scroll_to_cursor()

    def on_focus(self) -> None:
        self.refresh_line(self.cursor)

    def on_blur(self) -> None:
        self.refresh_line(self.cursor)

    def _scroll_to_cursor(self) -> None:
        height = max(self.size.height, 1)
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    # ---- actions ---------------------------------------------------------------------------

    def _move(self, index: int) -> None:
        if self.keys:
            self.cursor = max(0, min(index, len(self.keys) - 1))

    def action_cursor(self, delta: int) -> None:
        self._move(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move(self.cursor + direction * max(self.size.height - 1, 1))

    def action_jump(self, where: int) -> None:
        self._move(where if where >= 0 else len(self.keys) - 1)

    def action_select(self) -> None:
        if self.selected:
            self.post_message(self.Selected(self.selected))

    def on_click(self, event: Click) -> None:
        index = int(self.scroll_offset.y) + event.y
        if 0 <= index < len(self.keys):
            self.cursor = index
            if event.chain >= 2:
                self.action_select()
