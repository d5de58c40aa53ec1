"""3 Training: the runs under ``ARCHIVIST_HOME/runs`` with their curves and latest preview.

Reads the trainer's files (see :class:`engine.train.runs.RunSnapshot`): ``metrics.jsonl`` is read
incrementally (new lines only), charts redraw only when their series change. Pause, stop and
promote go through ``archivist runs ...``; resume goes through the queue, one job per run
(the paused job of the run is queued again).
"""

from __future__ import annotations

import re
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from archivist_tui.data import clock
from archivist_tui.messages import ActionDone
from archivist_tui.screens.base import ArchivistScreen
from archivist_tui.widgets.chart import Chart
from archivist_tui.widgets.image import InlineImage

STATE_MARK = {"running": "●", "done": "✓", "failed": "✗", "stopped": "■", "paused": "‖", "interrupted": "!",
              "stop_at": "‖"}
LOSSES = ("l_pix", "l_percep", "l_g_gan", "l_d")


def series(rows: list[dict[str, Any]], keys: tuple[str, ...], max_points: int = 400) -> dict:
    """``{key: (iterations, values)}`` for the keys present, thinned to about ``max_points``."""
    step = max(1, len(rows) // max_points)
    sampled = rows[::step]
    out = {}
    for k in keys:
        pts = [(r.get("iteration", i), r[k]) for i, r in enumerate(sampled) if isinstance(r.get(k), (int, float))]
        if pts:
            out[k] = ([p[0] for p in pts], [p[1] for p in pts])
    return out


def _iteration_of(ckpt) -> int:
    m = re.search(r"(\d+)", ckpt.stem)
    return int(m.group(1)) if m else 0


class TrainingScreen(ArchivistScreen):
    MODE = "training"
    CSS_PATH = "training.tcss"
    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("x", "stop", "Stop"),
        Binding("P", "promote", "Promote checkpoint"),
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
                    yield InlineImage(self.images, id="training-preview")
                with Horizontal(id="training-lower"):
                    yield Chart("D(real) / D(fake)", id="chart-d")
                    # PSNR (dB, ~20-40) and SSIM (0-1) each on their own axis: on one, both look flat.
                    yield Chart("PSNR", id="chart-psnr")
                    yield Chart("SSIM", id="chart-ssim")
                yield Static("", id="training-resources")
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
        total = run.total_iters
        parts = [f"{run.name}  {run.state}", f"iter {run.iteration} / {total or '?'}"]
        rate = last.get("it_per_s")
        if isinstance(rate, (int, float)):
            parts.append(f"{rate:.1f} it/s")
            if total and rate > 0 and run.state == "running":
                parts.append(f"ETA {clock((total - run.iteration) / rate)}")
        if isinstance(last.get("data_wait"), (int, float)):
            parts.append(f"data wait {last['data_wait'] * 100:.0f} %")
        self.query_one("#training-summary", Static).update("   ".join(parts))
        resources = []
        if isinstance(last.get("lr_g"), (int, float)):
            resources.append(f"lr {last['lr_g']:.1e}")
        if isinstance(last.get("cpu_mem_mb"), (int, float)):
            resources.append(f"RAM {last['cpu_mem_mb'] / 1024:.1f}G")
        if isinstance(last.get("gpu_mem_mb"), (int, float)):
            resources.append(f"GPU {last['gpu_mem_mb'] / 1024:.1f}G")
        if run.val:
            v = run.val[-1]
            resources.append(f"PSNR {v.get('psnr', 0):.2f}  SSIM {v.get('ssim', 0):.3f}")
        if run.checkpoints:
            resources.append("ckpts " + " ".join(str(_iteration_of(c)) for c in run.checkpoints[-3:]))
        self.query_one("#training-resources", Static).update("   ".join(resources))
        self.query_one("#chart-losses", Chart).set_series(series(run.train, LOSSES))
        self.query_one("#chart-d", Chart).set_series(series(run.train, ("p_d_real", "p_d_fake")))
        self.query_one("#chart-psnr", Chart).set_series(series(run.val, ("psnr",)))
        self.query_one("#chart-ssim", Chart).set_series(series(run.val, ("ssim",)))
        preview = self.query_one(InlineImage)
        latest = run.previews[-1] if run.previews else None
        if latest != preview.path:
            preview.set_path(latest)

    # -- actions -----------------------------------------------------------------------------
    @work(thread=True, group="training-action")
    def _cli(self, args: list[str], done: str) -> None:
        self.run_and_report(args, done)

    def _need(self) -> Any | None:
        run = self.selected
        if run is None:
            self.notify("no run selected", severity="warning")
        return run

    def action_promote(self) -> None:
        from archivist_tui.widgets.dialogs import Prompt

        run = self._need()
        if run is None:
            return
        if not run.checkpoints:
            self.notify(f"{run.name} has no checkpoint yet", severity="warning")
            return
        iterations = [_iteration_of(c) for c in run.checkpoints]

        def got(answer: str | None) -> None:
            if not answer:
                return
            from archivist_tui.data import list_models

            parts = answer.split()
            name = parts[0]
            if name in {m.name for m in list_models()}:
                self.notify(f"promote: a model named {name!r} is in the library already; choose another name",
                            severity="error")
                return
            args = ["runs", "promote", run.name, "--name", name]
            if len(parts) > 1:
                if not parts[1].isdigit() or int(parts[1]) not in iterations:
                    self.notify(f"promote: {parts[1]!r} is not a checkpoint of {run.name}; checkpoints: "
                                + ", ".join(map(str, iterations)), severity="error")
                    return
                args += ["--iter", parts[1]]
            self._cli(args, f"promoted {run.name} as {name}")

        self.app.push_screen(Prompt(f"Promote {run.name}: MODEL-NAME [ITERATION]",
                                    value=f"{run.name}-{iterations[-1]}",
                                    hint="checkpoints: " + ", ".join(map(str, iterations)) + " (default the latest)"),
                             got)

    def action_pause(self) -> None:
        run = self._need()
        if run is not None:
            self._cli(["runs", "pause", run.name], f"{run.name}: pause requested (checkpoint, then stop)")

    def action_stop(self) -> None:
        run = self._need()
        if run is not None:
            self._cli(["runs", "stop", run.name], f"{run.name}: stop requested")

    def action_resume(self) -> None:
        run = self._need()
        if run is not None:
            self._resume(run.name)

    @work(thread=True, group="training-action")
    def _resume(self, name: str) -> None:
        """Continue the run through the queue: its paused job if it has one, else a new job.

        The rule is the engine's (:meth:`QueueClient.resume_run`, also ``archivist runs resume``):
        one job per run, so the queue never shows two jobs training the same run.
        """
        from engine.queue.client import QueueClient

        try:
            with QueueClient() as client:
                job, what = client.resume_run(name)
        except Exception as exc:  # ArchivistError: one line naming what is wrong
            self.app.post_message(ActionDone(str(exc), False))
            return
        self.app.post_message(ActionDone({
            "resumed": f"{name}: job {job} queued again; it continues from its latest checkpoint",
            "submitted": f"{name}: queued as job {job}; it continues from its latest checkpoint",
            "queued": f"{name}: job {job} is already waiting in the queue",
            "running": f"{name}: job {job} is already running",
        }[what], True))
