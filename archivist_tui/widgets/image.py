"""Inline images: textual-image (kitty graphics, sixel) on a real terminal, half-cells elsewhere.

textual-image queries the terminal when imported, so it is imported lazily and only when stdout
is a TTY and the mode allows it; everywhere else (tests, pipes, ``--images halfcell``) the picture
is drawn with Unicode half-blocks from a Pillow thumbnail, and ``none`` shows the file name.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.text import Text
from textual.containers import Container
from textual.widget import Widget

MODES = ("auto", "kitty", "sixel", "halfcell", "none")
ENV = "ARCHIVIST_IMAGES"


def resolve_mode(mode: str | None = None) -> str:
    """The image mode in use: ``$ARCHIVIST_IMAGES`` beats the option; auto is halfcell off a TTY."""
    mode = os.environ.get(ENV) or mode or "auto"
    if mode not in MODES:
        mode = "auto"
    if mode in ("auto", "kitty", "sixel") and not sys.stdout.isatty():
        return "halfcell"
    if mode == "auto" and (os.environ.get("TMUX") or os.environ.get("TERM", "").startswith(("screen", "tmux"))):
        # tmux passes neither kitty graphics nor sixel through by default: skip asking the terminal.
        return "halfcell"
    return mode


class HalfcellPicture(Widget):
    """An image drawn with ``▀``: two pixels a cell, scaled to the widget, aspect kept."""

    DEFAULT_CSS = "HalfcellPicture { width: 1fr; height: 1fr; }"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.path: Path | None = None
        self._cache: tuple[tuple[int, int, float], Text] | None = None

    def set_path(self, path: Path | None) -> None:
        self.path = path
        self._cache = None
        self.refresh()

    def render(self) -> Text:
        if self.path is None:
            return Text("")
        w, h = self.size.width, self.size.height
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return Text(f"({self.path.name} missing)", style="dim")
        key = (w, h, mtime)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        text = _halfcell(self.path, w, h)
        self._cache = (key, text)
        return text


def _halfcell(path: Path, w: int, h: int) -> Text:
    from PIL import Image as PILImage

    if w < 2 or h < 1:
        return Text("")
    try:
        with PILImage.open(path) as im:
            im = im.convert("RGB")
            iw, ih = im.size
            scale = min(w / iw, (2 * h) / ih)
            tw, th = max(1, int(iw * scale)), max(2, int(ih * scale) // 2 * 2)
            im = im.resize((tw, th))
            px = im.load()
    except OSError as exc:
        return Text(f"({path.name}: {exc})", style="red")
    text = Text()
    for y in range(0, th, 2):
        for x in range(tw):
            r1, g1, b1 = px[x, y]
            r2, g2, b2 = px[x, y + 1] if y + 1 < th else (0, 0, 0)
            text.append("▀", style=f"rgb({r1},{g1},{b1}) on rgb({r2},{g2},{b2})")
        if y + 2 < th:
            text.append("\n")
    return text


class InlineImage(Container):
    """Shows one PNG at a time in the mode the app was started with."""

    DEFAULT_CSS = """
    InlineImage { width: 1fr; height: 1fr; }
    InlineImage > .caption { height: 1; color: $text-muted; }
    """

    def __init__(self, mode: str = "halfcell", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode
        self.path: Path | None = None
        self._inner: Widget | None = None

    def _make_inner(self) -> Widget:
        if self.mode in ("auto", "kitty", "sixel"):
            try:
                from textual_image import widget as ti

                cls = {"auto": ti.Image, "kitty": ti.TGPImage, "sixel": ti.SixelImage}[self.mode]
                inner = cls()
                # auto × auto: as large as the panel allows with the picture's own aspect ratio
                # (a fixed size on both axes would stretch a 3:1 LQ │ out │ GT strip to the panel's shape).
                inner.styles.width = "auto"
                inner.styles.height = "auto"
                return inner
            except Exception:  # no terminal answer, no graphics: fall back
                self.mode = "halfcell"
        if self.mode == "none":
            from textual.widgets import Static

            return Static("", classes="caption")
        return HalfcellPicture()

    def on_mount(self) -> None:
        self._inner = self._make_inner()
        self.mount(self._inner)
        if self.path is not None:
            self.call_after_refresh(self.set_path, self.path)

    def set_path(self, path: Path | None) -> None:
        """Show ``path`` (or nothing)."""
        self.path = path
        inner = self._inner
        if inner is None:
            return
        if isinstance(inner, HalfcellPicture):
            inner.set_path(path)
        elif self.mode == "none":
            inner.update(str(path.name) if path else "")  # type: ignore[attr-defined]
        else:
            inner.image = str(path) if path else None  # type: ignore[attr-defined]
