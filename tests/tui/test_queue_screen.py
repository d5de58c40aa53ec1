"""1 Queue: jobs read from the store, the detail pane, the add form's validation."""

from __future__ import annotations

import time

import pytest
from textual.widgets import DataTable, Input, Label, Static

from tests.tui.conftest import cell_texts, make_app, wait_for


def write_store(home, log_path, event_time: float | None = None):
    """Two jobs in a real store made by the engine: #1 running at 81 % with one event, #2 queued."""
    from engine.queue.store import Store

    spec = {"input": "/data/reel_03.mkv", "output": "/data/out/reel_03.mkv", "models": ["medium", "drunet:0.5:5"]}
    with Store(home / "queue.db") as store:
        first = store.insert_job("restore", spec)
        store.insert_job("restore", {"input": "/data/reel_04.mkv", "output": "/o", "models": ["medium"]})
        store.update(first, status="running", slot="cpu", done=81, total=100, rate=41.2, eta=192,
                     log_path=str(log_path))
        store.execute("DELETE FROM events")  # only the worker's line below (the snapshot shows it)
        store.execute("INSERT INTO events (job_id, time, source, message) VALUES (?, ?, 'worker', 'segment 17 closed')",
                      (first, event_time or time.time()))


def execute(home, sql: str, *params) -> None:
    """One write on the store, through the engine's connection (only SQLite opens the file)."""
    from engine.queue.store import Store

    with Store(home / "queue.db") as store:
        store.execute(sql, params)


@pytest.mark.slow  # over ~1 s: outside the inner loop (CI runs it)
async def test_queue_screen_lists_jobs_and_shows_detail(archivist_home, tmp_path):
    log = tmp_path / "job1.log"
    log.write_text("opening reel\n41.2 fps\n")
    app = make_app()
    async with app.run_test(size=(140, 36)) as pilot:
        screen = app.screen
        empty = screen.query_one("#queue-empty", Static)
        await wait_for(pilot, lambda: "No job store yet" in str(empty.render()), what="no store")
        write_store(archivist_home, log)
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="two jobs")
        rows = cell_texts(table)
        assert rows[0][:4] == ["1", "restore", "reel_03.mkv → medium › drunet:0.5:5", "running"]
        assert rows[0][4].endswith("81%") and rows[0][5] == "41.2 fps" and rows[0][6] == "0:03:12"
        assert rows[0][7] == "cpu" and rows[1][3] == "queued" and rows[1][7] == "any"
        detail = screen.query_one("#queue-detail", Static)
        await wait_for(pilot, lambda: "segment 17 closed" in str(detail.render()), what="events")
        text = str(detail.render())
        assert "chain  medium › drunet:0.5:5" in text and "41.2 fps" in text

        # enter opens the job's log
        from archivist_tui.widgets.dialogs import LogView

        table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LogView), what="log view")
        assert "opening reel" in str(app.screen.query_one("#log-body", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LogView), what="log closed")

        # progress moves: the table follows
        execute(archivist_home, "UPDATE jobs SET status='done', done=100 WHERE id=1")
        await wait_for(pilot, lambda: cell_texts(table)[0][3] == "done", what="done")


async def test_add_form_validates_before_queueing(archivist_home, library_model, tmp_path, png):
    from archivist_tui.widgets.forms import AddRestoreForm

    src = png("in/frame.png")
    app = make_app(files_root=str(tmp_path))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AddRestoreForm), what="form")
        form = app.screen
        error = form.query_one("#form-error", Label)

        form.query_one("#form-input", Input).value = "in/missing.png"
        form.query_one("#form-output", Input).value = "out"
        form.action_submit()
        await pilot.pause()
        assert "does not exist" in str(error.render())

        form.query_one("#form-input", Input).value = "in/frame.png"
        form.query_one("#form-chain", Input).value = "nosuchmodel"
        form.action_submit()
        await pilot.pause()
        assert "neither a library model" in str(error.render())

        # The chain's own rules, not a copy of them: a strength above 1 is refused here, not by the job.
        form.query_one("#form-chain", Input).value = "tiny:2"
        form.action_submit()
        await pilot.pause()
        assert str(error.render()) == "✗ chain: stage 'tiny': strength 2 out of range: allowed a number 0 to 1"

        form.query_one("#form-chain", Input).value = "tiny:0.5"
        form.query_one("#form-device", Input).value = "gpu"
        form.action_submit()
        await pilot.pause()
        assert "device" in str(error.render())

        form.query_one("#form-device", Input).value = "cpu"
        request = form.validate()
        # An image input and a name without a suffix: a folder, as the field says.
        assert request.argv() == ["restore", str(src), "-o", str(tmp_path / "out") + "/", "-m", "tiny:0.5",
                                  "--queue", "--priority", "0", "--device", "cpu"]


@pytest.mark.slow  # over ~1 s: outside the inner loop (CI runs it)
async def test_a_refused_add_keeps_the_form_and_what_was_typed(archivist_home, library_model, tmp_path, png):
    """At 80x24, typed with keys: the command refuses (the output is the input); the form stays
    open with the one-line reason and every field as typed, and the next keys go into the form,
    not to the job list (where `c` would cancel the selected job)."""
    from archivist_tui.widgets.forms import AddRestoreForm
    from engine.queue.client import QueueClient

    src = png("a.png")
    with QueueClient() as client:
        job = client.submit("restore", {"input": str(src), "output": str(tmp_path / "o1.png"), "models": ["tiny"]})
    app = make_app(files_root=str(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the job listed")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AddRestoreForm), what="form")
        form = app.screen
        await pilot.press(*"a.png", "enter", *"a.png", "enter")
        form.query_one("#form-chain", Input).value = "tiny"
        await pilot.press("ctrl+s")
        error = form.query_one("#form-error", Label)
        await wait_for(pilot, lambda: "output is the input" in str(error.render()) or app.screen is not form,
                       what="the refusal")
        assert app.screen is form
        assert str(error.render()).startswith("✗ ") and len(str(error.render()).splitlines()) == 1
        assert "archivist: error" not in str(error.render())
        assert form.query_one("#form-input", Input).value == "a.png"
        assert form.query_one("#form-output", Input).value == "a.png"
        # The next keys land in the form: fix the output and queue it.
        form.query_one("#form-output", Input).focus()
        await pilot.press("end", "backspace", "backspace", "backspace", "backspace", *"c.png")
        assert form.query_one("#form-output", Input).value == "ac.png"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is not form, what="the form closed")
        await wait_for(pilot, lambda: table.row_count == 2, what="the new job listed")
        await wait_for(pilot, lambda: table.cursor_row == 1, what="the new job selected")
    with QueueClient() as client:
        assert client.get(job).status == "queued"  # nothing typed reached the job list
        assert client.get(job + 1).spec["output"] == str(tmp_path / "ac.png")


async def test_path_completion_is_rooted(tmp_path, png):
    from archivist_tui.widgets.forms import PathSuggester

    png("reels/reel_01.png")
    suggester = PathSuggester(tmp_path)
    assert await suggester.get_suggestion("re") == "reels/"
    assert await suggester.get_suggestion("reels/r") == "reels/reel_01.png"


async def test_cancel_through_the_real_client(archivist_home, library_model, png):
    from engine.queue.client import QueueClient

    src = png("a.png")
    with QueueClient() as client:
        job = client.submit("restore", {"input": str(src), "output": str(src.parent / "out.png"), "models": ["tiny"]})
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="job listed")
        await pilot.press("c")
        await wait_for(pilot, lambda: cell_texts(table)[0][3] == "cancelled", timeout=60, what="cancelled")
    with QueueClient() as client:
        assert client.get(job).status == "cancelled"


def detail_text(screen) -> str:
    return str(screen.query_one("#queue-detail", Static).render())


@pytest.mark.slow
async def test_detail_follows_the_selected_job_and_a_pause_reads_pausing(queue_daemon, tmp_path):
    """The pane follows the job live (state, events), and a pause shows as pausing until it takes
    effect: claimed like the daemon does, paused from the TUI, taken back by a real daemon."""
    from archivist_tui.cli import main
    from engine.queue.client import QueueClient
    from engine.queue.store import Store

    with QueueClient() as client:
        job = client.submit("selftest", {"output": str(tmp_path / "out.txt"), "steps": 2})
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: "queued" in detail_text(screen), what="queued in the detail")

        with Store() as store:  # as the daemon claims it, but no worker: the job stays running
            assert store.claim(["cpu:0"]).id == job
        await wait_for(pilot, lambda: cell_texts(table)[0][3] == "running", what="row running")
        await wait_for(pilot, lambda: "running" in detail_text(screen) and "claimed on slot cpu:0" in detail_text(screen),
                       what="the detail follows: running, with the claim event")

        await pilot.press("p")
        await wait_for(pilot, lambda: cell_texts(table)[0][3] == "pausing", what="row pausing")
        await wait_for(pilot, lambda: "pausing" in detail_text(screen), what="detail pausing")
        assert "pause requested" in detail_text(screen)
        with QueueClient() as client:
            assert client.get(job).status == "running"  # not paused yet: nothing has stopped

        # The daemon finds the job without a worker and applies the pending pause.
        assert main(["daemon", "start"]) == 0
        await wait_for(pilot, lambda: cell_texts(table)[0][3] == "paused", timeout=60, what="row paused")
        await wait_for(pilot, lambda: "paused" in detail_text(screen) and "worker gone; paused" in detail_text(screen),
                       what="detail paused")
        await pilot.press("r")
        await wait_for(pilot, lambda: cell_texts(table)[0][3] == "done", timeout=60, what="row done")
        await wait_for(pilot, lambda: "done" in detail_text(screen).splitlines()[0], what="detail done")


@pytest.mark.slow
async def test_an_added_job_is_selected_and_the_form_labels_every_field(archivist_home, library_model, tmp_path,
                                                                        png):
    from archivist_tui.widgets.forms import AddRestoreForm
    from engine.queue.client import QueueClient

    first = png("first.png")
    png("in/frame.png")
    with QueueClient() as client:
        client.submit("restore", {"input": str(first), "output": str(tmp_path / "o1.png"), "models": ["tiny"]})
    app = make_app(files_root=str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="first job listed")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AddRestoreForm), what="form")
        form = app.screen
        # Every field says what it is, also when it holds a value (priority 0, device any).
        labels = {}
        for field in form.query(Input):
            label = field.parent.query(Label).first()
            labels[field.id] = str(label.render()).strip().lower()
        assert labels == {"form-input": "input", "form-output": "output", "form-chain": "chain",
                          "form-codec": "codec", "form-priority": "priority", "form-device": "gpu slot"}
        form.query_one("#form-input", Input).value = "in/frame.png"
        form.query_one("#form-output", Input).value = "restored"
        form.query_one("#form-chain", Input).value = "tiny"
        form.action_submit()
        await wait_for(pilot, lambda: table.row_count == 2, timeout=60, what="the new job listed")
        await wait_for(pilot, lambda: table.cursor_row == 1, what="the new job selected")
        await wait_for(pilot, lambda: detail_text(app.screen).startswith("#2 restore"), what="its detail")


async def test_detail_shows_the_spec_as_fields(archivist_home, library_model, png, tmp_path):
    from engine.queue.client import QueueClient

    src = png("reel.png")
    with QueueClient() as client:
        client.submit("restore", {"input": str(src), "output": str(tmp_path / "out.png"), "models": ["tiny:0.5"],
                                  "tile": 256})
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: "#1 restore" in detail_text(app.screen), what="detail")
        lines = detail_text(app.screen).splitlines()
        assert any(ln.split() == ["input", str(src)] for ln in lines)
        assert any(ln.split() == ["chain", "tiny:0.5"] for ln in lines)
        assert any(ln.split() == ["tile", "256"] for ln in lines)
        assert not any(ch in detail_text(app.screen) for ch in '{}"')  # no raw JSON


async def test_at_80x24_status_progress_eta_and_the_gpu_figure_stay_in_view(archivist_home, tmp_path, monkeypatch):
    from archivist_tui import data
    from archivist_tui.widgets.header import HeaderLine

    monkeypatch.setattr(data, "device_summary", lambda: "cuda:0 62% 7.1/24G")
    write_store(archivist_home, tmp_path / "log")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="jobs")
        await wait_for(pilot, lambda: app.screen.query_one(HeaderLine).daemon == "down", what="header")
        # The table sizes its columns when idle after rows arrive (Textual's own flag says when it has).
        await wait_for(pilot, lambda: not table._require_update_dimensions and table.virtual_size.width > 0,
                       what="the columns sized")
        labels = [str(c.label) for c in table.columns.values()]
        for wanted in ("STATUS", "PROGRESS", "ETA"):
            assert wanted in labels
        # Nothing to scroll sideways: every column is inside the table's width.
        assert table.virtual_size.width <= table.scrollable_content_region.width
        header = app.screen.query_one(HeaderLine)
        assert header.render().plain.rstrip().endswith("cuda:0 62% 7.1/24G")
        assert header.render().cell_len <= 80


async def test_help_lists_the_screens_own_keys_first(archivist_home, tmp_path):
    from textual.widgets._key_panel import BindingsTable

    write_store(archivist_home, tmp_path / "log")
    app = make_app()
    async with app.run_test(size=(100, 36)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="jobs")
        table.focus()
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: app.screen.query(BindingsTable), what="help panel")
        rendered = app.screen.query_one(BindingsTable).render_bindings_table()
        keys = [str(getattr(c, "plain", c)).strip() for c in rendered.columns[0].cells]
        keys = [k for k in keys if k]
        assert keys[:4] == ["a", "c", "p", "r"], keys


async def test_queue_table_follows_added_and_removed_jobs_in_place(archivist_home, tmp_path):
    """Jobs removed and added while the screen is open: the table shows exactly the store's jobs, in
    order, whether it is changed in place (10,000 rows are never filled again for one new job) or
    filled again because a column must grow (job 10 after job 9)."""
    write_store(archivist_home, tmp_path / "log")

    def add(name: str) -> None:
        from engine.queue.store import Store

        with Store(archivist_home / "queue.db") as store:
            store.insert_job("restore", {"input": f"/data/{name}.mkv", "output": "/o", "models": ["medium"]})

    def shown(table) -> list[list[str]]:
        return [[str(getattr(c, "plain", c)) for c in table.get_row_at(i)] for i in range(table.row_count)]

    for i in range(3, 9):
        add(f"reel_{i:02d}")
    app = make_app()
    async with app.run_test(size=(140, 36)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 8, what="eight jobs")
        execute(archivist_home, "DELETE FROM jobs WHERE id = 4")
        add("reel_09")
        execute(archivist_home, "UPDATE jobs SET status = 'failed' WHERE id = 5")
        await wait_for(pilot, lambda: [r[0] for r in shown(table)] == ["1", "2", "3", "5", "6", "7", "8", "9"],
                       what="job 4 gone, job 9 added")
        rows = shown(table)
        assert rows[-1][2] == "reel_09.mkv → medium" and rows[-1][3] == "queued"
        await wait_for(pilot, lambda: shown(table)[3][3] == "failed", what="job 5 failed")
        add("reel_10")
        await wait_for(pilot, lambda: [r[0] for r in shown(table)][-2:] == ["9", "10"], what="job 10 added")
        assert shown(table)[-1][:4] == ["10", "restore", "reel_10.mkv → medium", "queued"]
