"""1 Queue: jobs read from the store, the detail pane, the add form's validation."""

from __future__ import annotations

import json
import sqlite3
import time

from textual.widgets import DataTable, Input, Label, Static

from tests.tui.conftest import cell_texts, make_app, wait_for

# The columns of the store's jobs/events tables the TUI reads (engine/queue/store.py, issue 5).
JOBS_SQL = """CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, spec TEXT NOT NULL,
    status TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0, device TEXT NOT NULL DEFAULT 'any', slot TEXT,
    done REAL, total REAL, rate REAL, eta REAL, error TEXT, log_path TEXT)"""
EVENTS_SQL = """CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER, time REAL NOT NULL,
    source TEXT NOT NULL, message TEXT NOT NULL)"""


def write_store(home, log_path, event_time: float | None = None):
    con = sqlite3.connect(home / "queue.db")
    con.execute(JOBS_SQL)
    con.execute(EVENTS_SQL)
    spec = {"input": "/data/reel_03.mkv", "output": "/data/out/reel_03.mkv", "models": ["medium", "drunet:0.5:5"]}
    con.execute("INSERT INTO jobs (kind, spec, status, slot, done, total, rate, eta, log_path) VALUES "
                "('restore', ?, 'running', 'cpu', 81, 100, 41.2, 192, ?)", (json.dumps(spec), str(log_path)))
    con.execute("INSERT INTO jobs (kind, spec, status) VALUES ('restore', ?, 'queued')",
                (json.dumps({"input": "/data/reel_04.mkv", "output": "/o", "models": ["medium"]}),))
    con.execute("INSERT INTO events (job_id, time, source, message) VALUES (1, ?, 'worker', 'segment 17 closed')",
                (event_time or time.time(),))
    con.commit()
    con.close()


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
        assert "chain: medium › drunet:0.5:5" in text and "41.2 fps" in text

        # enter opens the job's log
        from archivist_tui.widgets.dialogs import LogView

        table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LogView), what="log view")
        assert "opening reel" in str(app.screen.query_one("#log-body", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LogView), what="log closed")

        # progress moves: the table follows
        con = sqlite3.connect(archivist_home / "queue.db")
        con.execute("UPDATE jobs SET status='done', done=100 WHERE id=1")
        con.commit()
        con.close()
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

        form.query_one("#form-chain", Input).value = "tiny:0.5"
        form.query_one("#form-device", Input).value = "gpu"
        form.action_submit()
        await pilot.pause()
        assert "device" in str(error.render())

        form.query_one("#form-device", Input).value = "cpu"
        request = form.validate()
        assert request.argv() == ["restore", str(src), "-o", str(tmp_path / "out"), "-m", "tiny:0.5",
                                  "--queue", "--priority", "0", "--device", "cpu"]


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
        job = client.submit("restore", {"input": str(src), "output": str(src.parent / "out"), "models": ["tiny"]})
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="job listed")
        await pilot.press("c")
        await wait_for(pilot, lambda: cell_texts(table)[0][3] == "cancelled", timeout=60, what="cancelled")
    with QueueClient() as client:
        assert client.get(job).status == "cancelled"
