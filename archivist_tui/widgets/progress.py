"""Progress cells for tables: ``████████░░  81%``."""

from __future__ import annotations

from rich.text import Text


def progress_cell(fraction: float, width: int = 10) -> Text:
    """A bar of ``width`` cells and the percentage."""
    f = min(1.0, max(0.0, fraction))
    full = round(f * width)
    text = Text("█" * full, style="green")
    text.append("░" * (width - full), style="dim")
    text.append(f" {f * 100:3.0f}%")
    return text


def status_cell(status: str) -> Text:
    colours = {"running": "bold cyan", "done": "green", "failed": "bold red", "queued": "yellow",
               "paused": "magenta", "pausing": "magenta", "cancelling": "red", "cancelled": "dim"}
    return Text(status, style=colours.get(status, ""))
