"""A plotext line chart drawn to the widget's size."""

from __future__ import annotations

import re

from rich.text import Text
from textual.widget import Widget

_BACKGROUND = re.compile(r"\x1b\[48;(?:5;\d+|2;\d+;\d+;\d+)m")


class Chart(Widget):
    """Curves (name → (xs, ys)) drawn with plotext; redrawn on resize or new data only."""

    DEFAULT_CSS = """
    Chart { height: 1fr; min-height: 6; }
    """

    def __init__(self, title: str = "", **kwargs):
        super().__init__(**kwargs)
        self.title = title
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self._cache: tuple[tuple[int, int], Text] | None = None

    def set_series(self, series: dict[str, tuple[list[float], list[float]]]) -> None:
        if series != self.series:
            self.series = series
            self._cache = None
            self.refresh()

    def render(self) -> Text:
        w, h = self.size.width, self.size.height
        if self._cache is not None and self._cache[0] == (w, h):
            return self._cache[1]
        text = self._draw(w, h)
        self._cache = ((w, h), text)
        return text

    def _draw(self, w: int, h: int) -> Text:
        if w < 10 or h < 4:
            return Text("")
        series = {k: v for k, v in self.series.items() if v[0]}
        if not series:
            return Text(f"{self.title}\n(no data yet)", style="dim")
        import plotext as plt

        fig = plt.figure
        fig.clear()
        fig.plot_size(w, h)
        names = ", ".join(series)
        # A chart titled after its one curve ("PSNR" over psnr) does not repeat the name.
        named = self.title and all(k.lower() in self.title.lower() for k in series)
        fig.title(self.title if named else f"{self.title}: {names}" if self.title else names)
        fig.legend(active=False)
        values = [y for _, ys in series.values() for y in ys]
        if values and max(values) == min(values):
            # A flat curve: plotext would pad the axis by ±1, taking SSIM 0.8 to -0.2…1.8.
            pad = abs(values[0]) * 0.01 or 0.01
            fig.ruler("y").lim(values[0] - pad, values[0] + pad)
        for name, (xs, ys) in series.items():
            signal = fig.signal(list(xs), list(ys), marker="braille")
            signal.label(name)
            signal.lines()
            fig.draw(signal)
        # plotext paints its own background and black axes: keep the terminal's instead.
        ansi = _BACKGROUND.sub("", str(fig.build())).replace("\x1b[38;5;0m", "\x1b[39m")
        return Text.from_ansi(ansi.rstrip("\n"))
