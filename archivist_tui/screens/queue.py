"""1 Queue: the jobs in the store with progress, rate, ETA and device; the selected job's detail.

Reads ``ARCHIVIST_HOME/queue.db`` read-only (see :func:`archivist_tui.data.list_jobs`); actions go
through ``archivist queue ...`` child processes once the queue commands exist.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from archivist_tui.screens.base import ArchivistScreen
from archivist_tui.widgets.progress import progress_cell, status_cell
from archivist_tui.widgets.tables import fill_table

# (key, label, minimum width): room for the values that change in place (rate, ETA, status).
COLUMNS = (("id", "ID", 3), ("kind", "KIND", 7), ("name", "NAME", 20), ("status", "STATUS", 9),
           ("progress", "PROGRESS", 15), ("rate", "RATE", 11), ("eta", "ETA", 8), ("dev", "DEV", 6))


class QueueScreen(ArchivistScreen):
    MODE = "queue"
    CSS_PATH = "queue.tcss"
    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("c", "cancel_job", "Cancel"),
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("R", "retry", "Retry", show=False),
        Binding("plus", "priority(1)", "Priority +", show=False),
        Binding("minus", "priority(-1)", "Priority -", show=False),
        Binding("enter", "log", "Log"),
        Binding("d", "daemon", "Daemon"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[Any] = []
        self._signature: tuple = ()
        self._message: str | None = None

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static("", id="queue-empty")
        yield DataTable(id="queue-table", cursor_type="row")
        yield Static("", id="queue-detail")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        fill_table(self.query_one(DataTable), COLUMNS, [])

    @staticmethod
    def poll() -> Any:
        from archivist_tui.data import list_jobs

        return list_jobs()

    def show(self, data: Any) -> None:
        if data is None:
            message = "No job store yet (ARCHIVIST_HOME/queue.db): jobs appear here once one is queued."
            data = []
        else:
            message = "" if data else "The queue is empty: a adds a restore job."
        if message != self._message:  # an update lays the screen out again: only when it changes
            self._message = message
            self.query_one("#queue-empty", Static).update(message)
        signature = tuple((j.id, j.status, round(j.progress, 3), j.rate, j.eta, j.device) for j in data)
        if signature == self._signature:
            return
        table = self.query_one(DataTable)
        previous = self._signature
        same_rows = [s[0] for s in signature] == [s[0] for s in previous]
        self._signature = signature
        self.jobs = list(data)
        if same_rows:
            # Progress ticks: change only the cells that moved, keep the table (cheap, no flicker).
            for j, (new, old) in zip(self.jobs, zip(signature, previous)):
                row = str(j.id)
                if new[1] != old[1]:
                    table.update_cell(row, "status", status_cell(j.status))
                if new[2] != old[2]:
                    table.update_cell(row, "progress", progress_cell(j.progress))
                if new[3] != old[3]:
                    table.update_cell(row, "rate", j.rate)
                if new[4] != old[4]:
                    table.update_cell(row, "eta", j.eta)
                if new[5] != old[5]:
                    table.update_cell(row, "dev", j.device)
            return
        fill_table(table, COLUMNS, [(str(j.id), (str(j.id), j.kind, j.name, status_cell(j.status),
                                                  progress_cell(j.progress), j.rate, j.eta, j.device))
                                    for j in self.jobs])
        self._show_detail()

    @property
    def selected(self) -> Any | None:
        table = self.query_one(DataTable)
        if not self.jobs or table.cursor_row is None or table.cursor_row >= len(self.jobs):
            return None
        return self.jobs[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # the table takes enter before the screen's binding does
        self.action_log()

    def action_log(self) -> None:
        from archivist_tui.widgets.dialogs import LogView

        j = self.selected
        if j is None:
            self.notify("no job selected", severity="warning")
            return
        self.app.push_screen(LogView(f"#{j.id} {j.kind} {j.name}: log", j.detail.get("log_path")))

    def _show_detail(self) -> None:
        j = self.selected
        if j is None:
            self.query_one("#queue-detail", Static).update("")
            return
        self._load_detail(j)

    @work(thread=True, exclusive=True, group="queue-detail")
    def _load_detail(self, job: Any) -> None:
        import time

        from archivist_tui.data import job_events, log_tail

        spec = dict(job.detail.get("spec") or {})
        head = Text.assemble((f"#{job.id} {job.kind}  ", "bold"), str(spec.pop("input", "")), " → ",
                             str(spec.pop("output", "")), f"   {job.status}")
        models = spec.pop("models", None)
        lines = [head]
        if models:
            lines.append(Text("chain: " + " › ".join(map(str, models))))
        rest = json.dumps(spec, default=str)
        if rest != "{}":
            lines.append(Text(rest[:300], style="dim"))
        if job.detail.get("error"):
            lines.append(Text(f"error: {job.detail['error']}", style="red"))
        for t, msg in job_events(job.id, 4):
            lines.append(Text(f"{time.strftime('%H:%M:%S', time.localtime(t))} {msg}"))
        for line in log_tail(job.detail.get("log_path"), 4):
            lines.append(Text(line, style="dim"))
        self.app.call_from_thread(self._set_detail, job.id, Text("\n").join(lines))

    def _set_detail(self, job_id: int, text: Text) -> None:
        j = self.selected
        if j is not None and j.id == job_id:
            self.query_one("#queue-detail", Static).update(text)

    # -- actions -----------------------------------------------------------------------------
    def _queue_cli(self, args: list[str], done: str) -> None:
        self._run(args, done)

    @work(thread=True, group="queue-action")
    def _run(self, args: list[str], done: str) -> None:
        from archivist_tui.app import ActionDone
        from archivist_tui.data import run_archivist

        result = run_archivist(args)
        self.app.post_message(ActionDone(done if result.ok else result.message, result.ok))

    def _job_action(self, verb: str, *extra: str) -> None:
        j = self.selected
        if j is None:
            self.notify("no job selected", severity="warning")
            return
        self._queue_cli(["queue", verb, str(j.id), *extra], f"job {j.id}: {verb}")

    def action_add(self) -> None:
        from pathlib import Path

        from archivist_tui.data import list_models
        from archivist_tui.widgets.forms import AddRestoreForm

        def got(request: Any) -> None:
            if request is not None:
                self._queue_cli(request.argv(), f"queued {Path(request.input).name}")

        root = Path(getattr(self.app, "files_root", None) or Path.cwd())
        self.app.push_screen(AddRestoreForm(root, [e.name for e in sorted(list_models(), key=lambda e: e.builtin)]), got)

    def action_cancel_job(self) -> None:
        self._job_action("cancel")

    def action_pause(self) -> None:
        self._job_action("pause")

    def action_resume(self) -> None:
        self._job_action("resume")

    def action_retry(self) -> None:
        self._job_action("retry")

    def action_priority(self, delta: int) -> None:
        j = self.selected
        if j is not None:
            self._queue_cli(["queue", "priority", str(j.id), str(int(j.detail.get("priority") or 0) + delta)],
                            f"job {j.id}: priority {int(j.detail.get('priority') or 0) + delta}")

    def action_daemon(self) -> None:
        from archivist_tui.data import daemon_state

        if daemon_state() == "up":
            self.notify("the daemon is running (archivist daemon stop stops it)")
            return
        self.notify("starting the daemon…")
        self._queue_cli(["daemon", "start"], "daemon started")
