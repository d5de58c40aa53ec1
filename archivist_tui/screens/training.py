"""3 Training: the runs under ``ARCHIVIST_HOME/runs`` with their curves and latest preview.

Reads ``runs/<run>/metrics.jsonl`` incrementally (new lines only), ``previews/*.png`` and
``checkpoints/``. Assumed metrics keys (one JSON object a line): ``iter``, ``total_iters``,
``it_s``, ``eta_s``, ``data_wait``, ``lr``, ``l1``, ``perceptual``, ``g_gan``, ``d_real``,
``d_fake``, ``psnr``, ``ssim``; missing keys are simply not drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from archivist_tui.screens.base import ArchivistScreen
from archivist_tui.widgets.chart import Chart
from archivist_tui.widgets.image import InlineImage

STATE_MARK = {"running": "●", "done": "✓", "failed": "✗", "stopped": "■", "paused": "‖"}
LOSSES = ("l1", "perceptual", "g_gan")


def _series(rows: list[dict[str, Any]], keys: tuple[str, ...], max_points: int = 400) -> dict:
    step = max(1, len(rows) // max_points)
    sampled = rows[::step]
    out = {}
    for k in keys:
        pts = [(r.get("iter", i), r[k]) for i, r in enumerate(sampled) if isinstance(r.get(k), (int, float))]
        if pts:
            out[k] = ([p[0] for p in pts], [p[1] for p in pts])
    return out


def _clock(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class TrainingScreen(ArchivistScreen):
    MODE = "training"
    CSS_PATH = "training.tcss"
    BINDINGS = [
        Binding("P", "promote", "Promote checkpoint"),
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("x", "stop", "Stop"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Any] = []
        self.selected_name: str | None = None
        self._names: tuple = ()

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with Horizontal(id="training-body"):
            yield OptionList(id="training-runs")
            with Vertical(id="training-main"):
                yield Static("No training runs yet (ARCHIVIST_HOME/runs).", id="training-summary")
                with Horizontal(id="training-charts"):
                    yield Chart("losses", id="chart-losses")
                    yield Chart("D(real) / D(fake)", id="chart-d")
                with Horizontal(id="training-lower"):
                    yield Chart("PSNR / SSIM", id="chart-psnr")
                    yield InlineImage(self.images, id="training-preview")
        yield from self.compose_footer()

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "narrow")

    @staticmethod
    def poll() -> Any:
        from archivist_tui.data import list_runs

        return list_runs()

    def show(self, data: Any) -> None:
        self.runs = list(data)
        names = tuple((r.name, r.state) for r in self.runs)
        options = self.query_one(OptionList)
        if names != self._names:
            self._names = names
            highlighted = options.highlighted
            options.clear_options()
            options.add_options([Option(f"{r.name} {STATE_MARK.get(r.state, '?')}", id=r.name) for r in self.runs])
            if self.runs:
                options.highlighted = min(highlighted or 0, len(self.runs) - 1)
        self._show_run()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.selected_name = event.option.id
        self._show_run()

    @property
    def selected(self) -> Any | None:
        for r in self.runs:
            if r.name == self.selected_name:
                return r
        return self.runs[0] if self.runs else None

    def _show_run(self) -> None:
        run = self.selected
        if run is None:
            return
        last = run.last
        total = last.get("total_iters") or run.config.get("iterations") or "?"
        parts = [f"{run.name}  [{run.state}]", f"iter {last.get('iter', 0)} / {total}"]
        if isinstance(last.get("it_s"), (int, float)):
            parts.append(f"{last['it_s']:.1f} it/s")
        parts.append(f"ETA {_clock(last.get('eta_s'))}")
        if isinstance(last.get("data_wait"), (int, float)):
            parts.append(f"data wait {last['data_wait'] * 100:.0f} %")
        if isinstance(last.get("lr"), (int, float)):
            parts.append(f"lr {last['lr']:.0e}")
        ckpts = " ".join(p.stem for p in run.checkpoints[-3:])
        if ckpts:
            parts.append(f"ckpts {ckpts}")
        self.query_one("#training-summary", Static).update("   ".join(parts))
        self.query_one("#chart-losses", Chart).set_series(_series(run.metrics, LOSSES))
        self.query_one("#chart-d", Chart).set_series(_series(run.metrics, ("d_real", "d_fake")))
        self.query_one("#chart-psnr", Chart).set_series(_series(run.metrics, ("psnr", "ssim")))
        preview = self.query_one(InlineImage)
        latest = run.previews[-1] if run.previews else None
        if latest != preview.path:
            preview.set_path(latest)

    # -- actions -----------------------------------------------------------------------------
    def action_promote(self) -> None:
        from archivist_tui.widgets.dialogs import Prompt

        run = self.selected
        if run is None or not run.checkpoints:
            self.notify("no checkpoint to promote", severity="warning")
            return
        ckpts = {p.stem: p for p in run.checkpoints}
        latest = run.checkpoints[-1]

        def got(answer: str | None) -> None:
            if not answer:
                return
            parts = answer.split()
            ckpt = ckpts.get(parts[0]) or Path(parts[0]).expanduser()
            name = parts[1] if len(parts) > 1 else f"{run.name}-{ckpt.stem}"
            self._promote(str(ckpt), name)

        self.app.push_screen(Prompt(f"Promote a checkpoint of {run.name}: CHECKPOINT [NAME]", value=latest.stem,
                                    hint="checkpoints: " + ", ".join(ckpts)), got)

    def _promote(self, ckpt: str, name: str) -> None:
        self.run_worker(lambda: self._promote_worker(ckpt, name), thread=True, group="training-action")

    def _promote_worker(self, ckpt: str, name: str) -> None:
        from archivist_tui.app import ActionDone
        from archivist_tui.data import run_archivist

        result = run_archivist(["models", "import", ckpt, "--name", name])
        self.app.post_message(ActionDone(f"promoted {Path(ckpt).name} as {name}" if result.ok else result.message,
                                         result.ok))

    def _unavailable(self, what: str) -> None:
        self.notify(f"{what} needs the trainer's run control (issue 6), not on this branch yet", severity="warning")

    def action_pause(self) -> None:
        self._unavailable("pause")

    def action_resume(self) -> None:
        self._unavailable("resume")

    def action_stop(self) -> None:
        self._unavailable("stop")
