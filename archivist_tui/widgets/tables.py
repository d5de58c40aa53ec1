"""Filling a DataTable with columns sized from the data itself.

DataTable measures auto-width columns on an idle event after rows arrive; sizing the columns here
when the rows are set makes the first frame right (and snapshots deterministic).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


def cell_width(value: object) -> int:
    """The cells a table value takes (a Text or anything printed as a string)."""
    return value.cell_len if isinstance(value, Text) else cell_len(str(value))


def fill_table(table: DataTable, columns: Sequence[tuple[str, str, int]], rows: Sequence[tuple[str, Sequence]]) -> None:
    """Replace the table's rows; ``columns`` are ``(key, label, minimum width)``, ``rows`` ``(key, cells)``."""
    cursor = table.cursor_row
    table.clear(columns=True)
    for i, (key, label, minimum) in enumerate(columns):
        width = max([minimum, cell_len(label)] + [cell_width(cells[i]) for _, cells in rows])
        table.add_column(label, key=key, width=width)
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if rows and cursor is not None:
        table.move_cursor(row=min(cursor, len(rows) - 1))
