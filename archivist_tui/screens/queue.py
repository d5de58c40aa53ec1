"""1 Queue: the jobs in the store with progress, rate, ETA and device; the selected job's detail.

Reads ``ARCHIVIST_HOME/queue.db`` read-only (see :func:`archivist_tui.data.list_jobs`); actions go
through ``archivist queue ...`` child processes once the queue commands exist.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

from archivist_tui.messages import ActionDone
from archivist_tui.output import cells, shorten
from archivist_tui.screens.base import ArchivistScreen
from archivist_tui.widgets.progress import progress_cell, status_cell
from archivist_tui.widgets.tables import cell_width, fill_table

# (key, label, minimum width): room for the values that change in place (rate, ETA, status).
COLUMNS = (("id", "ID", 3), ("kind", "KIND", 7), ("name", "NAME", 20), ("status", "STATUS", 10),
           ("progress", "PROGRESS", 15), ("rate", "RATE", 11), ("eta", "ETA", 8), ("dev", "DEV", 6))
# Below this width RATE and DEV fold away and NAME gives way, so STATUS, PROGRESS and ETA stay in view.
WIDE = 100
NARROW_DROP = ("rate", "dev")


def layout_columns(width: int, names: list[str]) -> tuple[tuple[str, str, int], ...]:
    """The columns that fit ``width`` cells, NAME as wide as the names need and the room allows."""
    cols = [c for c in COLUMNS if width >= WIDE or c[0] not in NARROW_DROP]
    # Each column takes its width plus one cell of padding either side; keep two for the scrollbar.
    fixed = sum(c[2] + 2 for c in cols if c[0] != "name")
    room = max(8, width - 2 - fixed - 2)
    need = max([len("NAME")] + [cells(n) for n in names])  # terminal cells: a wide character takes two
    return tuple((k, label, min(room, max(need, 8)) if k == "name" else w) for k, label, w in cols)


# What a status means for the person waiting on it.
NOTES = {"pausing": "(pauses at its next safe boundary)", "cancelling": "(stops at its next safe boundary)",
         "paused": "(r resumes it)"}


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
        self._columns: tuple = ()
        self._select_id: int | None = None  # a job this screen just added: selected once it is listed
        self._detail_text: Text | None = None

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static("", id="queue-empty")
        yield DataTable(id="queue-table", cursor_type="row")
        yield Static("", id="queue-detail")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self._columns = layout_columns(self.size.width or 80, [])
        fill_table(self.query_one(DataTable), self._columns, [])

    def on_resize(self) -> None:
        self.set_class(self.size.height < 32, "short")
        columns = layout_columns(self.size.width or 80, [j.name for j in self.jobs])
        if columns != self._columns:
            self._signature = ()  # lay the table out again for the new width
            self.show(self.jobs)

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
        self.jobs = list(data)
        if signature != self._signature:
            self._update_table(signature)
        self._select_added()
        # Every poll: the selected job's state, events and log tail move even when its row does not.
        self._show_detail()

    def _update_table(self, signature: tuple) -> None:
        table = self.query_one(DataTable)
        previous = self._signature
        columns = layout_columns(self.size.width or 80, [j.name for j in self.jobs])
        self._signature = signature
        if previous and columns == self._columns and self._patch_table(table, columns, signature, previous):
            return
        self._columns = columns
        name_width = next(c[2] for c in columns if c[0] == "name")
        rows = [(str(j.id), self._cells(j, columns, name_width)) for j in self.jobs]
        fill_table(table, columns, rows)

    @staticmethod
    def _cells(j: Any, columns: tuple, name_width: int) -> tuple:
        # The start of a long name gives way: its end (the file name, the chain) tells jobs apart.
        head = j.name[: len(j.name) - len(j.name_tail)]
        row = {"id": str(j.id), "kind": j.kind, "name": shorten(head, name_width, j.name_tail),
               "status": status_cell(j.status), "progress": progress_cell(j.progress), "rate": j.rate,
               "eta": j.eta, "dev": j.device}
        return tuple(row[c[0]] for c in columns)

    def _patch_table(self, table: DataTable, columns: tuple, signature: tuple, previous: tuple) -> bool:
        """Change the table in place: cells that moved, rows removed, new jobs appended. False when the
        rows are not the old ones (less those removed) followed by new ones; then it is filled again.

        With 10,000 jobs, filling the table again takes many seconds (DataTable measures every cell),
        and building every row's cells on each poll most of one: only what changed is touched.
        """
        new_ids = {s[0] for s in signature}
        kept = [s for s in previous if s[0] in new_ids]
        old_ids = {s[0] for s in previous}
        added = signature[len(kept):]
        if [s[0] for s in signature[:len(kept)]] != [s[0] for s in kept] or any(s[0] in old_ids for s in added):
            return False
        name_width = next(c[2] for c in columns if c[0] == "name")
        appended = [(str(j.id), self._cells(j, columns, name_width)) for j in self.jobs[len(kept):]]
        widths = [table.columns[ColumnKey(c[0])].width for c in columns]
        if any(cell_width(cell) > width for _, row in appended for cell, width in zip(row, widths)):
            return False  # a wider id (job 1000 after 999): the columns are sized again
        for s in previous:
            if s[0] not in new_ids:
                table.remove_row(str(s[0]))
        keys = {c[0] for c in columns}
        moving = ((1, "status", lambda j: status_cell(j.status)), (2, "progress", lambda j: progress_cell(j.progress)),
                  (3, "rate", lambda j: j.rate), (4, "eta", lambda j: j.eta), (5, "dev", lambda j: j.device))
        for j, new, old in zip(self.jobs, signature, kept):
            if new == old:
                continue
            for index, key, value in moving:
                if new[index] != old[index] and key in keys:
                    table.update_cell(str(j.id), key, value(j))
        for key, row in appended:
            table.add_row(*row, key=key)
        return True

    def _select_added(self) -> None:
        if self._select_id is None:
            return
        ids = [j.id for j in self.jobs]
        if self._select_id in ids:
            self.query_one(DataTable).move_cursor(row=ids.index(self._select_id))
            self._select_id = None

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
            self._set_detail(None, Text(""))
            return
        self._load_detail(j)

    @work(thread=True, exclusive=True, group="queue-detail")
    def _load_detail(self, job: Any) -> None:
        import time

        from archivist_tui.data import job_events, log_tail, spec_fields

        d = job.detail
        head = Text.assemble((f"#{job.id} {job.kind}  ", "bold"), status_cell(job.status))
        if job.status in NOTES:
            head.append(f"  {NOTES[job.status]}", style="dim")
        where = [f"priority {d.get('priority') or 0}", f"device {d.get('device') or 'any'}"]
        if d.get("slot"):
            where.append(f"slot {d['slot']}")
        head.append("   " + "   ".join(where), style="dim")
        lines = [head]
        fields = spec_fields(job.kind, d.get("spec") or {})
        width = max([len(k) for k, _ in fields] + [6])
        for key, value in fields:
            lines.append(Text.assemble((f"{key:<{width}} ", "dim"), value))
        if d.get("error"):
            lines.append(Text(f"error: {d['error']}", style="red"))
        for t, msg in job_events(job.id, 4):
            lines.append(Text(f"{time.strftime('%H:%M:%S', time.localtime(t))} {msg}"))
        for line in log_tail(d.get("log_path"), 4):
            lines.append(Text(line, style="dim"))
        self.app.call_from_thread(self._set_detail, job.id, Text("\n").join(lines))

    def _set_detail(self, job_id: int | None, text: Text) -> None:
        j = self.selected
        if (j.id if j is not None else None) != job_id:
            return  # the selection moved on while this was read
        if self._detail_text is not None and text == self._detail_text:
            return  # unchanged: an update would lay the screen out again for nothing
        self._detail_text = text
        self.query_one("#queue-detail", Static).update(text)

    # -- actions -----------------------------------------------------------------------------
    def _queue_cli(self, args: list[str], done: str) -> None:
        self._run(args, done)

    @work(thread=True, group="queue-action")
    def _run(self, args: list[str], done: str) -> None:
        self.run_and_report(args, done)

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
            # The form has queued it already (it stays open on a refusal): show it and select it.
            if request is None:
                return
            done = f"queued {Path(request.input).name}"
            if request.job_id is not None:
                self._select_id = request.job_id
                done = f"{done} as job {request.job_id}"
            self.app.post_message(ActionDone(done, True))

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
            self.notify("the daemon is up; it keeps running jobs after you quit")
            return
        self.notify("starting the daemon…")
        self._queue_cli(["daemon", "start"], "daemon started")
