"""The messages the workstation's screens and the app send each other.

They live apart from ``app.py`` so that the screens, which post them, and the app, which
receives them, both import this module and neither imports the other: the app knows its
screens, the screens never know the app's module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class Polled(Message):
    """One poll's result for one screen."""

    mode: str
    daemon: str
    devices: str
    data: Any


class ActionDone(Message):
    """A screen's background action finished (posted from its worker)."""

    def __init__(self, text: str, ok: bool = True) -> None:
        super().__init__()
        self.text = text
        self.ok = ok
