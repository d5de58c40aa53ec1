"""Job kinds through the daemon: a real restore of a folder with a tiny model, and its cancel cleanup."""

from __future__ import annotations

import cv2
import numpy as np

from archivist_tui.cli import main
from engine.queue import QueueClient, Store
from engine.queue.daemon import start_daemon
from engine.queue.kinds import get_kind, kinds


def _frames(folder, n=4):
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(n):
        assert cv2.imwrite(str(folder / f"f{i:03d}.png"), rng.integers(0, 255, (32, 48, 3), dtype=np.uint8))


def test_restore_folder_through_the_queue(queue_home, tmp_path, tiny_compact, wait_for, capsys, monkeypatch):
    model, _ = tiny_compact
    src = tmp_path / "reel"
    _frames(src)
    monkeypatch.chdir(tmp_path)  # relative paths in the command line are made absolute in the spec
    assert main(["restore", "reel", "-o", "queued/", "-m", f"{model.name}:0.8", "--queue", "--device", "cpu",
                 "--priority", "3"]) == 0
    jid = int(capsys.readouterr().out.strip())
    with Store() as s:
        job = s.get(jid)
    assert job.kind == "restore" and job.device == "cpu" and job.priority == 3
    assert job.spec["input"] == str(src) and job.spec["models"] == [f"{model}:0.8"]
    assert job.output == str(tmp_path / "queued") + "/"

    start_daemon()
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=60, what="restore job ended")
    job = Store().get(jid)
    assert job.status == "done", job.error
    assert (job.done, job.total) == (4, 4)

    # Byte-identical to running the same restore directly.
    assert main(["restore", str(src), "-o", str(tmp_path / "direct") + "/", "-m", f"{model}:0.8",
                 "--device", "cpu"]) == 0
    for i in range(4):
        a = cv2.imread(str(tmp_path / "queued" / f"f{i:03d}.png"), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "direct" / f"f{i:03d}.png"), cv2.IMREAD_UNCHANGED)
        assert a is not None and np.array_equal(a, b)

    # Cancel cleanup removes what the job wrote, and only that.
    (tmp_path / "queued" / "keep.txt").write_text("not ours")
    get_kind("restore").cleanup(job.spec, tmp_path)
    assert sorted(p.name for p in (tmp_path / "queued").iterdir()) == ["keep.txt"]


def test_restore_spec_validation(queue_home, tmp_path):
    import pytest

    from engine.errors import ArchivistError

    with QueueClient() as q:
        with pytest.raises(ArchivistError, match="unknown spec key 'colour'"):
            q.submit("restore", {"input": str(tmp_path), "output": "o/", "models": ["m"], "colour": 1})
        with pytest.raises(ArchivistError, match="'models' must be a non-empty list"):
            q.submit("restore", {"input": str(tmp_path), "output": "o/", "models": []})
        with pytest.raises(ArchivistError, match="strength 2 out of range"):
            q.submit("restore", {"input": str(tmp_path), "output": "o/", "models": ["m:2"]})


def test_registry(monkeypatch):
    assert {"restore", "degrade", "train", "selftest"} <= set(kinds())
    monkeypatch.delenv("ARCHIVIST_TEST_KINDS")
    assert "selftest" not in kinds()
