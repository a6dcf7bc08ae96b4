"""A table for many rows on the Line API: it draws only the lines on screen.

DataTable keeps every row as widgets-worth of state and relayouts on change; at 10,000 nodes
updating once a second that costs more than a frame. Here the owner hands over an ordered
list of row keys and a function that makes a row's cells; the table renders the visible
rows, caches each row's strip, and drops a row's cache only when told that row changed.
The header stays put while rows scroll under it. The cursor follows its row's key, so a
re-sort or a refilter keeps the same row selected at the same place on screen.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.tui.rows import Cell, Column

TONES = ("ok", "warn", "crit", "info", "muted", "accent")


def fit(text: str, width: int, right: bool = False) -> str:
    """`text` in exactly `width` cells: cropped with an ellipsis, padded to the side."""
    size = cell_len(text)
    if size > width:
        return set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, width)
    pad = " " * (width - size)
    return pad + text if right else text + pad


class LineTable(ScrollView, can_focus=True):
    """Rows by key; `row_cells(key)` makes the cells of a row when it must be drawn."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First row", show=False),
        Binding("end,G", "last", "Last row", show=False),
        Binding("enter", "select", "Open", show=True),
        Binding("s", "sort_next", "Sort", show=True),
        Binding("S", "sort_reverse", "Reverse", show=True),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "line-table--header", "line-table--sorted", "line-table--cursor",
        *(f"line-table--{tone}" for tone in TONES),
    }

    DEFAULT_CSS = """
    LineTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
    }
    LineTable > .line-table--header { background: $panel; text-style: bold; }
    LineTable > .line-table--sorted { background: $panel; color: $accent; text-style: bold; }
    LineTable > .line-table--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
    }
    LineTable:focus > .line-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    LineTable > .line-table--ok { color: $text-success; }
    LineTable > .line-table--warn { color: $text-warning; }
    LineTable > .line-table--crit { color: $text-error; text-style: bold; }
    LineTable > .line-table--info { color: $text-primary; }
    LineTable > .line-table--muted { color: $foreground-muted; }
    LineTable > .line-table--accent { color: $text-primary; }
    """

    class RowSelected(Message):
        """Enter (or a second click) on a row."""

        def __init__(self, table: LineTable, key: Hashable) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LineTable:
            return self.table

    class SortChanged(Message):
        """The user asked for another order; the owner re-sorts and calls `set_keys`."""

        def __init__(self, table: LineTable, column: str, reverse: bool) -> None:
            super().__init__()
            self.table = table
            self.column = column
            self.reverse = reverse

        @property
        def control(self) -> LineTable:
            return self.table

    sort_column: reactive[str | None] = reactive(None)
    sort_reverse: reactive[bool] = reactive(False)

    def __init__(self, columns: Sequence[Column], row_cells: Callable[[Hashable], list[Cell]],
                 *, sortable: bool = True, empty_text: str = "nothing to show",
                 name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.row_cells = row_cells
        self.sortable = sortable
        self.empty_text = empty_text
        self.keys: list[Hashable] = []
        self.cursor_row = 0
        self._columns: list[Column] = []
        self._strips: LRUCache[tuple[Hashable, bool], Strip] = LRUCache(2048)
        self._tone_styles: dict[str, Style] = {}
        self.set_columns(columns)

    # -- data from the owner ---------------------------------------------------------------

    @property
    def columns(self) -> list[Column]:
        return self._columns

    @property
    def cursor_key(self) -> Hashable | None:
        return self.keys[self.cursor_row] if self.keys else None

    def set_columns(self, columns: Sequence[Column]) -> None:
        self._columns = list(columns)
        self._row_width = sum(c.width + 1 for c in self._columns)
        self._strips.clear()
        self._resize()

    def set_keys(self, keys: list[Hashable]) -> None:
        """A new order (sorted, filtered); the cursor stays on its key and its screen line."""
        old = self.cursor_key
        on_screen = self.cursor_row - self.scroll_offset.y
        self.keys = keys
        row = self.cursor_row
        if old is not None and old in keys:
            row = keys.index(old)  # O(n) once per re-sort, not per frame
        self.cursor_row = max(0, min(row, len(keys) - 1))
        self._resize()
        if self.is_mounted and self.size.height:
            self.scroll_to(y=max(0, self.cursor_row - on_screen), animate=False, immediate=True)
            self._follow_cursor()
        self.refresh()

    def invalidate(self, keys: Iterable[Hashable]) -> None:
        """These rows changed: drop their strips; redraw if any is on screen."""
        visible = set(self.visible_keys())
        redraw = False
        for key in keys:
            self._strips.discard((key, False))
            self._strips.discard((key, True))
            redraw = redraw or key in visible
        if redraw:
            self.refresh()

    def invalidate_all(self) -> None:
        self._strips.clear()
        self.refresh()

    def visible_keys(self) -> list[Hashable]:
        top = self.scroll_offset.y
        return self.keys[top: top + max(0, self.size.height - 1)]

    def move_cursor_to(self, key: Hashable) -> bool:
        try:
            row = self.keys.index(key)
        except ValueError:
            return False
        self._set_cursor(row)
        return True

    # -- rendering -------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._tone_styles.clear()
        self._strips.clear()  # theme changed: every cached colour is wrong

    def _resize(self) -> None:
        self.virtual_size = Size(self._row_width, len(self.keys) + 1)

    def _style(self, name: str) -> Style:
        style = self._tone_styles.get(name)
        if style is None:
            style = self._tone_styles[name] = self.get_component_rich_style(
                f"line-table--{name}", partial=name in TONES)
        return style

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y == 0:
            strip = self._header_strip()
        else:
            row = scroll_y + y - 1
            if row >= len(self.keys):
                if row == 0 and not self.keys:
                    text = fit(f" {self.empty_text}", self._row_width)
                    strip = Strip([Segment(text, base + self._style("muted"))])
                else:
                    return Strip.blank(width, base)
            else:
                strip = self._row_strip(self.keys[row], row == self.cursor_row)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _header_strip(self) -> Strip:
        header, sorted_ = self._style("header"), self._style("sorted")
        segments = []
        for col in self._columns:
            is_sorted = col.key == self.sort_column
            title = col.title + (("▼" if self.sort_reverse else "▲") if is_sorted else "")
            segments.append(Segment(fit(title, col.width, col.right), sorted_ if is_sorted
                                    else header))
            segments.append(Segment(" ", header))
        return Strip(segments, self._row_width)

    def _row_strip(self, key: Hashable, cursor: bool) -> Strip:
        strip = self._strips.get((key, cursor))
        if strip is not None:
            return strip
        base = self.rich_style
        if cursor:
            base = base + self._style("cursor")
        segments = []
        for col, (text, tone) in zip(self._columns, self.row_cells(key), strict=False):
            style = base if not tone or cursor else base + self._style(tone)
            segments.append(Segment(fit(text, col.width, col.right), style))
            segments.append(Segment(" ", base))
        strip = Strip(segments, self._row_width)
        self._strips.set((key, cursor), strip)
        return strip

    # -- cursor ----------------------------------------------------------------------------

    def _set_cursor(self, row: int) -> None:
        if not self.keys:
            return
        row = max(0, min(row, len(self.keys) - 1))
        if row != self.cursor_row:
            self.cursor_row = row
            self.refresh()
        self._follow_cursor()

    def _follow_cursor(self) -> None:
        """Scroll just enough to keep the cursor row under the header."""
        page = max(1, self.size.height - 1)
        top = self.scroll_offset.y
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + page:
            self.scroll_to(y=self.cursor_row - page + 1, animate=False, immediate=True)

    def _on_click(self, event: events.Click) -> None:
        if event.y == 0:
            self._click_header(event.x + self.scroll_offset.x)
            return
        row = self.scroll_offset.y + event.y - 1
        if 0 <= row < len(self.keys):
            again = row == self.cursor_row
            self._set_cursor(row)
            if again or event.chain >= 2:
                self.action_select()

    def _click_header(self, x: int) -> None:
        for col in self._columns:
            if x < col.width + 1:
                if self.sortable:
                    self._sort(col.key, not self.sort_reverse
                               if col.key == self.sort_column else False)
                return
            x -= col.width + 1

    def _sort(self, column: str, reverse: bool) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self.post_message(self.SortChanged(self, column, reverse))

    def watch_sort_column(self) -> None:
        self.refresh()

    def watch_sort_reverse(self) -> None:
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        self._set_cursor(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self._set_cursor(self.cursor_row + direction * max(1, self.size.height - 2))

    def action_first(self) -> None:
        self._set_cursor(0)

    def action_last(self) -> None:
        self._set_cursor(len(self.keys) - 1)

    def action_select(self) -> None:
        if self.keys:
            self.post_message(self.RowSelected(self, self.keys[self.cursor_row]))

    def action_sort_next(self) -> None:
        """Sort by the next column (the first after the last)."""
        if not self.sortable:
            return
        keys = [c.key for c in self._columns]
        i = keys.index(self.sort_column) + 1 if self.sort_column in keys else 0
        self._sort(keys[i % len(keys)], False)

    def action_sort_reverse(self) -> None:
        if self.sortable:
            self._sort(self.sort_column or self._columns[0].key, not self.sort_reverse)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.sortable or action not in ("sort_next", "sort_reverse")
