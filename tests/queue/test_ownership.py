"""A job touches only its own files, through the real store, client, daemon and workers.

Cancelling a job removes what its ledger lists and nothing else (a job that never ran has no
ledger); an existing output is refused at submit and, when it appears later, the job fails instead
of being taken as done; a failed run leaves earlier files untouched and a retry continues with the
images it had finished; a finished video job leaves no empty folder behind.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from archivist_tui.cli import main
from engine.degrade import load_profile
from engine.degrade.dataset import write_dataset
from engine.queue import QueueClient, Store
from engine.queue.daemon import start_daemon


def _images(folder: Path, n: int = 3, size=(32, 48), seed: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"f{i:03d}.png"
        assert cv2.imwrite(str(path), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (hidden ones too) with a digest of its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _one_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archivist: error: "), lines
    return lines[0]


def _submitted(capsys) -> int:
    return int(capsys.readouterr().out.strip().splitlines()[-1])


def test_cancelling_jobs_that_never_ran_deletes_nothing_of_the_users(queue_home, tmp_path, tiny_compact, capsys):
    model, _ = tiny_compact
    user = tmp_path / "user"
    scans = user / "scans"
    _images(scans)
    earlier = user / "restored"
    _images(earlier, seed=9)  # an earlier restore of the same scans
    clean = user / "clean"
    _images(clean, size=(40, 40), seed=5)
    write_dataset(clean, user / "pairs", load_profile("subtle"), count=1, seed=2)  # an existing dataset
    before = _snapshot(user)

    # A folder restored into itself is refused at submit now; a job an older version queued still
    # sits in the store with that spec.
    assert main(["restore", str(scans), "-o", str(scans) + "/", "-m", str(model), "--queue"]) == 1
    assert "the output folder is the input folder" in _one_error(capsys)
    with Store() as store:
        into_itself = store.insert_job("restore", {
            "input": str(scans), "output": str(scans) + "/", "models": [str(model)], "tile": 0, "tile_overlap": 40,
            "precision": "auto", "format": None, "video": {}}, output=str(scans) + "/")
    # Earlier results at the output path: refused unless --overwrite, then queued.
    assert main(["restore", str(scans), "-o", str(earlier) + "/", "-m", str(model), "--queue"]) == 1
    assert f"{earlier / 'f000.png'}: output exists" in _one_error(capsys)
    assert main(["restore", str(scans), "-o", str(earlier) + "/", "-m", str(model), "--queue", "--overwrite"]) == 0
    over_earlier = _submitted(capsys)
    # One output that appears after the job was queued (another job, the user).
    assert main(["restore", str(scans / "f000.png"), "-o", str(user / "later.png"), "-m", str(model), "--queue"]) == 0
    later_job = _submitted(capsys)
    (user / "later.png").write_bytes((scans / "f001.png").read_bytes())
    before["later.png"] = hashlib.sha256((user / "later.png").read_bytes()).hexdigest()
    # A degrade that would extend the existing dataset (same settings, more pairs per image).
    assert main(["degrade", str(clean), "-o", str(user / "pairs"), "--profile", "subtle", "--seed", "2",
                 "--count", "3", "--queue"]) == 0
    extend = _submitted(capsys)

    for job_id in (into_itself, over_earlier, later_job, extend):
        assert main(["queue", "cancel", str(job_id)]) == 0
        assert f"job #{job_id} cancelled" in capsys.readouterr().out
    assert _snapshot(user) == before
    with Store() as store:
        assert {store.get(j).status for j in (into_itself, over_earlier, later_job, extend)} == {"cancelled"}


def _dataset_is_valid(out: Path) -> list[dict]:
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    for entry in entries:
        assert (out / entry["gt"]).is_file() and (out / entry["lq"]).is_file()
    json.loads((out / "dataset.json").read_text())
    return entries


@pytest.mark.slow
def test_cancelling_a_degrade_that_extended_a_dataset_leaves_it_as_it_was(queue_home, tmp_path, wait_for):
    src = tmp_path / "clean"
    # Frames large enough that the 200 pairs take seconds: the pause lands before the end.
    _images(src, n=4, size=(192, 256))
    out = tmp_path / "pairs"
    write_dataset(src, out, load_profile("normal"), count=1, seed=0)
    before = _snapshot(out)
    with QueueClient() as q:
        jid = q.submit("degrade", {"input": str(src), "output": str(out), "profile": "normal", "count": 50})
    start_daemon()

    def some_pairs(job_id):
        def check():
            j = Store().get(job_id)
            assert j.status in ("queued", "running"), "the dataset must take longer than the first progress report"
            return (j.done or 0) >= 10
        return check

    wait_for(some_pairs(jid), timeout=60, interval=0.01, what="pairs added to the dataset")
    QueueClient().pause(jid)
    wait_for(lambda: Store().get(jid).status in ("paused", "done"), timeout=30, what="paused between pairs")
    assert Store().get(jid).status == "paused", "the whole dataset was written before the pause landed"
    assert len(_dataset_is_valid(out)) > 4  # it did extend the dataset

    assert main(["queue", "cancel", str(jid)]) == 0
    assert _snapshot(out) == before  # the job's pairs went with their manifest lines; nothing else changed
    _dataset_is_valid(out)

    # A dataset the cancelled job created itself goes entirely; this one is cancelled while it runs.
    with QueueClient() as q:
        new = q.submit("degrade", {"input": str(src), "output": str(tmp_path / "fresh"), "profile": "normal",
                                   "count": 50})
    wait_for(some_pairs(new), timeout=60, interval=0.01, what="pairs in the new dataset")
    assert main(["queue", "cancel", str(new)]) == 0
    wait_for(lambda: Store().get(new).status == "cancelled", timeout=30, what="the running job cancelled")
    assert not (tmp_path / "fresh").exists()


@pytest.mark.slow
def test_an_output_that_appears_after_submit_fails_the_job_and_is_kept(queue_home, tmp_path, tiny_compact,
                                                                      wait_for, capsys):
    model, _ = tiny_compact
    src = _images(tmp_path / "scans", n=1)[0]
    out = tmp_path / "out.png"
    assert main(["restore", str(src), "-o", str(out), "-m", str(model), "--queue", "--device", "cpu"]) == 0
    jid = _submitted(capsys)
    out.write_bytes(b"a stale result the user made meanwhile")
    start_daemon()
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=60, what="job ended")
    job = Store().get(jid)
    assert job.status == "failed"  # never taken as done because a file sits at its output path
    assert f"{out}: output exists" in job.error
    assert out.read_bytes() == b"a stale result the user made meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "scans", "tiny.safetensors"]


@pytest.mark.slow
def test_a_failed_overwrite_leaves_old_files_and_a_retry_continues_its_own_images(
        queue_home, tmp_path, tiny_compact, wait_for, capsys, configure):
    configure(max_attempts=1)
    model, _ = tiny_compact
    scans = tmp_path / "scans"
    _images(scans, n=5)
    good_f002 = (scans / "f002.png").read_bytes()
    (scans / "f002.png").write_bytes(b"not an image: the job fails on it")
    out = tmp_path / "restored"
    _images(out, n=5, seed=11)  # last week's results
    old = _snapshot(out)
    assert main(["restore", str(scans), "-o", str(out) + "/", "-m", str(model), "--queue", "--overwrite",
                 "--device", "cpu"]) == 0
    jid = _submitted(capsys)
    start_daemon()
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=60, what="job ended")
    assert Store().get(jid).status == "failed"
    partials = sorted(p.name for p in out.glob(".*"))
    assert partials == [f".f00{i}.png.archivist-job{jid}.part" for i in (0, 1)]  # the images it finished
    assert {k: v for k, v in _snapshot(out).items() if not k.startswith(".")} == old  # untouched

    (scans / "f002.png").write_bytes(good_f002)
    assert main(["queue", "retry", str(jid)]) == 0
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=60, what="retried job ended")
    job = Store().get(jid)
    assert job.status == "done", job.error
    assert "2 image(s) were finished by an earlier attempt" in Path(job.log_path).read_text()
    assert not list(out.glob(".*"))
    assert main(["restore", str(scans), "-o", str(tmp_path / "direct") + "/", "-m", str(model), "--device", "cpu"]) == 0
    assert _snapshot(out) == _snapshot(tmp_path / "direct")  # the same images a direct run writes

    # Removing a failed job takes its partial files with it; finished files stay.
    (scans / "f003.png").write_bytes(b"broken again")
    assert main(["restore", str(scans), "-o", str(tmp_path / "second") + "/", "-m", str(model), "--queue",
                 "--device", "cpu"]) == 0
    second = _submitted(capsys)
    wait_for(lambda: Store().get(second).status in ("done", "failed"), timeout=60, what="second job ended")
    assert len(list((tmp_path / "second").glob(".*.part"))) == 3
    assert main(["queue", "remove", str(second)]) == 0
    assert not (tmp_path / "second").exists() or not list((tmp_path / "second").iterdir())


def _write_clip(path: Path, frames: int = 12) -> None:
    from engine.video.synthetic import write_test_clip

    write_test_clip(path, frames=frames)


@pytest.mark.slow
def test_a_finished_video_job_leaves_only_its_log_and_ledger(queue_home, tmp_path, tiny_compact, wait_for, capsys):
    model, _ = tiny_compact
    clip = tmp_path / "reel.mkv"
    _write_clip(clip)
    out = tmp_path / "restored.mkv"
    assert main(["restore", str(clip), "-o", str(clip), "-m", str(model), "--queue"]) == 1
    assert "the output is the input" in _one_error(capsys)
    assert main(["restore", str(clip), "-o", str(out), "-m", str(model), "--queue", "--device", "cpu",
                 "--segment-frames", "4"]) == 0
    jid = _submitted(capsys)
    start_daemon()
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=60, what="video job ended")
    job = Store().get(jid)
    assert job.status == "done", job.error
    assert out.is_file()
    assert sorted(p.name for p in Path(job.log_path).parent.iterdir()) == ["log", "owned.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel.mkv", "restored.mkv", "tiny.safetensors"]


def test_two_live_jobs_never_write_one_place_unless_one_waits_for_the_other(queue_home, tmp_path, tiny_compact,
                                                                           capsys):
    """Two queued jobs to one output used to both pass submit; the later one then took the earlier one's
    file (with --overwrite) or failed halfway. Refused at submit, unless it is queued --after the writer."""
    model, _ = tiny_compact
    src = _images(tmp_path / "scans", n=1)[0]
    out = tmp_path / "out.png"
    restore = ["restore", str(src), "-m", str(model), "--queue", "--device", "cpu"]
    assert main([*restore, "-o", str(out)]) == 0
    first = _submitted(capsys)
    for argv in ([*restore, "-o", str(out)], [*restore, "-o", str(out), "--overwrite"]):
        assert main(argv) == 1
        assert _one_error(capsys) == (f"archivist: error: {out}: job #{first} (queued) writes there already; write "
                                      f"somewhere else, cancel #{first}, or queue this one to run once it has ended "
                                      f"(--after {first})")
    # A folder is the same folder with or without its trailing slash, and a degrade job writes too.
    folder = tmp_path / "restored"
    assert main([*restore[:1], str(tmp_path / "scans"), *restore[2:], "-o", f"{folder}/"]) == 0
    capsys.readouterr()
    assert main(["degrade", str(tmp_path / "scans"), "-o", str(folder), "--profile", "normal", "--queue"]) == 1
    assert "writes there already" in _one_error(capsys)
    # An output inside another job's output folder, or a folder that holds another job's output, too:
    # a restore into a dataset's lq/ would leave unpaired files there.
    for inside, words in ((f"{folder}/f000.png", f"writes {folder}/, which holds it"),
                          (str(tmp_path), f"writes {out} inside it")):
        assert main([*restore, "-o", inside]) == 1
        assert f"job #{first + 1 if 'holds' in words else first} (queued) {words}" in _one_error(capsys)
    assert main([*restore, "-o", f"{folder}-2/"]) == 0  # a name that only begins the same
    QueueClient().cancel(_submitted(capsys))
    assert [j.id for j in Store().jobs() if j.status == "queued"] == [first, first + 1]

    # Queued after the writer (directly, or through a job that waits for it), it is taken.
    assert main([*restore, "-o", str(out), "--overwrite", "--after", str(first)]) == 0
    second = _submitted(capsys)
    assert main([*restore, "-o", str(out), "--overwrite", "--after", str(first)]) == 1
    assert f"job #{second} (queued) writes there already" in _one_error(capsys)
    assert main([*restore, "-o", str(out), "--overwrite", "--after", str(second)]) == 0
    # Once the writers have ended, the place is free again...
    for job_id in (first, second, second + 1):
        QueueClient().cancel(job_id)
    assert main([*restore, "-o", str(out)]) == 0
    fresh = _submitted(capsys)
    # ...and a retry of an ended writer is refused while the new one waits, as a new job would be.
    assert main(["queue", "retry", str(first)]) == 1
    assert _one_error(capsys) == (f"archivist: error: {out}: job #{fresh} (queued) writes there already; retry this "
                                  f"one once #{fresh} has ended, or cancel #{fresh}")
    assert Store().get(first).status == "cancelled"
    QueueClient().cancel(fresh)
    assert main(["queue", "retry", str(first)]) == 0
    assert Store().get(first).status == "queued"
