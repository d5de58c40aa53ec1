"""``archivist queue`` without a daemon: commands travel through the store alone."""

from __future__ import annotations

import json

from archivist_tui.cli import main


def test_queue_commands_work_without_a_daemon(queue_home, tmp_path, capsys):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "scan.png"), np.zeros((8, 8, 3), np.uint8))  # a folder with no image is refused
    for i in range(3):
        assert main(["restore", str(tmp_path), "-o", str(tmp_path / f"o{i}") + "/", "-m", "archivist-starter", "--queue",
                     *(["--after", "1"] if i == 2 else [])]) == 0
    assert capsys.readouterr().out.split() == ["1", "2", "3"]

    assert main(["queue", "pause", "--all"]) == 0
    assert "paused 3 job(s): #1 #2 #3" in capsys.readouterr().out
    assert main(["queue", "list", "--status", "paused", "--json"]) == 0
    assert [j["id"] for j in json.loads(capsys.readouterr().out)] == [1, 2, 3]
    assert main(["queue", "resume", "2"]) == 0
    assert "job #2 queued" in capsys.readouterr().out
    assert main(["queue", "resume", "--all"]) == 0
    assert "resumed 2 job(s)" in capsys.readouterr().out

    assert main(["queue", "priority", "2", "7"]) == 0
    assert main(["queue", "show", "2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert shown["priority"] == 7 and shown["status"] == "queued" and shown["device"] == "any"
    assert shown["spec"]["models"] == ["archivist-starter"] and shown["spec"]["input"] == str(tmp_path)
    assert [e["message"] for e in shown["events"]][-1] == "priority 7"

    assert main(["queue", "remove", "1"]) == 1
    assert "job #3 waits on it" in capsys.readouterr().err
    assert main(["queue", "cancel", "3"]) == 0
    assert main(["queue", "cancel", "3"]) == 1
    assert "already ended (cancelled)" in capsys.readouterr().err
    assert main(["queue", "log", "3"]) == 1
    assert "has no log yet" in capsys.readouterr().err
    assert main(["queue", "log", "3", "-f"]) == 0  # ended without ever running: nothing to follow
    assert main(["queue", "show", "42"]) == 1
    assert "no job #42" in capsys.readouterr().err
    assert main(["queue", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ID", "KIND", "STATUS", "PRI", "DEVICE", "PROGRESS", "RATE", "ETA", "AFTER", "OUTPUT"]
    assert len(table) == 4


def test_restore_queue_rejects_a_bad_device(queue_home, tmp_path, capsys):
    assert main(["restore", str(tmp_path), "-o", "x/", "-m", "archivist-starter", "--queue", "--device", "tpu"]) == 1
    assert "--device 'tpu' invalid: allowed any, cpu or cuda:N" in capsys.readouterr().err


def test_queue_list_fits_an_80_or_60_column_terminal(queue_home, tmp_path, capsys, monkeypatch):
    """Every line fits COLUMNS: OUTPUT gives way from its start, then the lesser columns go
    (AFTER, PRI, RATE, ...), never ID, STATUS, PROGRESS or the end of the output's name."""
    from rich.cells import cell_len

    from engine.queue.store import Store

    out = tmp_path / ("deep-" * 8) / "reel_03_restored.mkv"
    with Store() as store:
        first = store.insert_job("restore", {"input": "/data/reel_03.mkv", "output": str(out), "models": ["medium"]},
                                 output=str(out))
        store.update(first, status="running", slot="cuda:0", done=8500, total=10411, rate=41.2, eta=192,
                     request="cancel")
        second = store.insert_job("restore", {"input": "/data/reel_04.mkv", "output": str(tmp_path / "reel_04.mkv"),
                                              "models": ["medium"]}, priority=10, after_id=first,
                                  output=str(tmp_path / "reel_04.mkv"))
    full = {}
    for columns in (None, "80", "60"):
        if columns is None:
            monkeypatch.delenv("COLUMNS", raising=False)  # captured output: no terminal, every column
        else:
            monkeypatch.setenv("COLUMNS", columns)
        assert main(["queue", "list"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 3, lines  # a header and one line per job
        header = lines[0].split()
        full[columns] = header
        if columns is not None:
            assert all(cell_len(line) <= int(columns) for line in lines), [cell_len(line) for line in lines]
        for wanted in ("ID", "STATUS", "PROGRESS", "OUTPUT"):
            assert wanted in header
        assert lines[1].split()[:3] == [str(first), "restore", "cancelling"]
        assert lines[2].split()[:3] == [str(second), "restore", "queued"]
        assert "82%" in lines[1]
        assert lines[1].endswith("_restored.mkv") and lines[2].endswith("reel_04.mkv")
    assert full[None] == ["ID", "KIND", "STATUS", "PRI", "DEVICE", "PROGRESS", "RATE", "ETA", "AFTER", "OUTPUT"]
    assert "ETA" in full["80"] and len(full["60"]) < len(full["80"]) < len(full[None])
