"""Job kinds through the daemon: a real restore of a folder with a tiny model, and its cancel cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.queue import QueueClient, Store
from engine.queue.daemon import start_daemon
from engine.queue.kinds import get_kind, kinds


def _frames(folder, n=4, size=(32, 48)):
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(n):
        assert cv2.imwrite(str(folder / f"f{i:03d}.png"), rng.integers(0, 255, (*size, 3), dtype=np.uint8))


@pytest.mark.slow
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
    get_kind("restore").cleanup(job.spec, Path(job.log_path).parent)
    assert sorted(p.name for p in (tmp_path / "queued").iterdir()) == ["keep.txt"]


@pytest.mark.slow
def test_restore_job_runs_through_the_backend_its_spec_names(queue_home, tmp_path, tiny_compact, wait_for, capsys):
    """``--backend`` travels in the spec to the worker process and reaches the networks there."""
    model, _ = tiny_compact
    src = tmp_path / "reel"
    _frames(src, n=3)
    assert main(["restore", str(src), "-o", str(tmp_path / "queued") + "/", "-m", str(model), "--queue",
                 "--device", "cpu", "--backend", "compile"]) == 0
    jid = int(capsys.readouterr().out.strip())
    start_daemon()
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=240, what="restore job ended")
    job = Store().get(jid)
    assert job.status == "done", job.error
    log = open(job.log_path).read()
    assert "model 'tiny': compile for input 1×3×32×48" in log, log[-2000:]
    assert len(list((tmp_path / "queued").iterdir())) == 3


def test_restore_spec_validation(queue_home, tmp_path):
    """The spec is a declared document: unknown keys refused with the keys there are, each value
    refused naming its key and what the key allows."""
    from engine.document import InvalidValue

    with QueueClient() as q:
        with pytest.raises(ArchivistError, match="unknown key 'colour': allowed keys are input, output, models, "
                           "tile, tile_overlap, precision, format, tone, backend, video, overwrite, cluster$"):
            q.submit("restore", {"input": str(tmp_path), "output": "o/", "models": ["m"], "colour": 1})
        with pytest.raises(ArchivistError, match=r"^models = \[\] invalid: allowed a non-empty list of "
                           r"MODEL\[:strength\[:sigma\]\]$"):
            q.submit("restore", {"input": str(tmp_path), "output": "o/", "models": []})
        with pytest.raises(ArchivistError, match="^restore job: spec key 'output' is missing$"):
            q.submit("restore", {"input": str(tmp_path), "models": ["m"]})
        with pytest.raises(ArchivistError, match="^unknown key 'video.colour': allowed keys are codec, crf, "):
            q.submit("restore", {"input": str(tmp_path), "output": "o/", "models": ["m"], "video": {"colour": 1}})
        for key, bad, allowed in (("precision", "fp8", "one of auto, fp32, fp16, bf16"),
                                  ("format", "jpg", "null or one of png, tiff"),
                                  ("tone", "sepia", "one of auto, color, gray"),
                                  ("overwrite", "yes", "true or false"),
                                  ("video", [], "null or a mapping of video options")):
            with pytest.raises(InvalidValue) as refused:
                q.submit("restore", {"input": str(tmp_path), "output": "o/", "models": ["m"], key: bad})
            assert (refused.value.key, str(refused.value)) == (key, f"{key} = {bad!r} invalid: allowed {allowed}")
        assert q.list_jobs() == []
        with pytest.raises(ArchivistError, match="strength 2 out of range"):
            q.submit("restore", {"input": str(tmp_path), "output": "o/", "models": ["m:2"]})


def test_a_tile_the_chain_would_refuse_is_refused_at_submit(queue_home, tmp_path, tiny_compact, capsys):
    """Tiles are 0 or at least 64 when the job runs, so a queued job with tile 32 is refused when it is
    submitted, by the same rule: the engine names the spec's key, the command line its flag. Nothing
    is queued either way."""
    from engine.document import InvalidValue
    from engine.inference.chain import tiling_problem

    _frames(tmp_path / "scans", n=1)
    model = str(tiny_compact[0])
    spec = {"input": str(tmp_path / "scans"), "output": str(tmp_path / "out") + "/", "models": [model]}
    with QueueClient() as q:
        for key, bad in (("tile", 32), ("tile", -64), ("tile", 64.0), ("tile", True), ("tile_overlap", -1)):
            with pytest.raises(InvalidValue) as refused:
                q.submit("restore", {**spec, key: bad})
            assert refused.value.key == key and refused.value.source is None
            assert str(refused.value) == f"{key} = {bad!r} invalid: {tiling_problem(key, bad)}"  # the chain's words
        assert str(refused.value) == "tile_overlap = -1 invalid: allowed an integer 0 or more (pixels)"
        assert q.submit("restore", {**spec, "tile": 64}) > 0  # the smallest tile the chain takes
    capsys.readouterr()
    for flag, value, line in (("--tile", "32", "argument --tile: 32 invalid: allowed 0 (no tiling) or an integer 64 or more (pixels)"),
                              ("--tile-overlap", "-1", "argument --tile-overlap: -1 invalid: allowed an integer 0 or more (pixels)")):
        assert main(["restore", spec["input"], "-o", spec["output"], "-m", model, flag, value, "--queue"]) == 2
        err = capsys.readouterr().err
        assert err == f"archivist: error: {line} (see 'archivist restore --help')\n"
    with Store() as store:
        assert [j.spec["tile"] for j in store.jobs()] == [64]


def test_the_command_line_names_the_flag_of_a_key_the_spec_refuses(queue_home, tmp_path, capsys):
    """A value the command line passes on unchecked is refused by the kind's declared spec at
    submit; main() shows that refusal as one line with the flag that set the key, and queues nothing."""
    import yaml

    from tests.train.trainkit import tiny_config

    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config()))
    assert main(["train", str(cfg), "--stop-at", "0", "--queue"]) == 1
    assert capsys.readouterr().err == ("archivist: error: --stop-at 0 invalid: allowed an integer 1 or "
                                       "more (iterations)\n")
    with QueueClient() as q:
        assert q.list_jobs() == []
        with pytest.raises(ArchivistError, match=r"^stop_at = 0 invalid: allowed null or an integer 1 or more"):
            q.submit("train", {"config": str(cfg), "stop_at": 0})  # the engine's face: the spec's key


def test_registry(monkeypatch):
    assert {"restore", "degrade", "train", "selftest", "gated"} <= set(kinds())
    monkeypatch.delenv("ARCHIVIST_TEST_KINDS")
    assert set(kinds()) == {"restore", "degrade", "train"}


def test_test_kinds_hook_names_what_is_wrong(monkeypatch, tmp_path):
    """``ARCHIVIST_TEST_KINDS`` names modules; a bad one is one clear error, and a start of the daemon
    fails with it instead of every job failing later."""
    (tmp_path / "kinds_clash.py").write_text(
        "from engine.queue.kinds import RESTORE\nKINDS = (RESTORE,)\n")
    (tmp_path / "kinds_none.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for value, message in (("no_such_module_here", "cannot import module 'no_such_module_here'"),
                           ("kinds_none", "module 'kinds_none' has no KINDS sequence of JobKind"),
                           ("kinds_clash", "module 'kinds_clash' defines kind 'restore', which is already registered")):
        monkeypatch.setenv("ARCHIVIST_TEST_KINDS", value)
        with pytest.raises(ArchivistError, match=f"ARCHIVIST_TEST_KINDS: {message}"):
            kinds()
    monkeypatch.setenv("ARCHIVIST_TEST_KINDS", "no_such_module_here")
    with pytest.raises(ArchivistError, match="cannot import module 'no_such_module_here'"):
        start_daemon()
    monkeypatch.setenv("ARCHIVIST_TEST_KINDS", " tests.queue.kinds_for_tests , ")
    assert "gated" in kinds()


def _write_clip(path, frames=24, width=64, height=48):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for i in range(frames):
            y, x = np.mgrid[0:height, 0:width]
            img = np.stack([(x * 4 + i * 3) % 256, (y * 5) % 256, ((x + y + i) * 2) % 256], -1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _count_frames(path) -> int:
    import av

    with av.open(str(path)) as f:
        return sum(1 for _ in f.decode(video=0))


@pytest.mark.slow
def test_video_restore_job_survives_a_killed_worker(queue_home, tmp_path, tiny_compact, gate, wait_for, capsys):
    """A real video restore, held by the test once two segments are closed, its worker killed -9 there:
    the job is taken back (not a failed attempt) and resumes after the finished segments."""
    import os
    import re
    import signal

    model, _ = tiny_compact
    clip = tmp_path / "reel.mkv"
    _write_clip(clip, frames=60)
    out = tmp_path / "restored.mkv"
    assert main(["restore", str(clip), "-o", str(out), "-m", str(model), "--queue", "--device", "cpu",
                 "--segment-frames", "10", "--codec", "ffv1"]) == 0
    queued = int(capsys.readouterr().out)
    spec = Store().get(queued).spec
    assert spec["video"]["segment_frames"] == 10
    assert main(["queue", "remove", str(queued)]) == 0  # the same spec runs again below, held by the test
    # Frame 21 is reported after segment 2 (frames 1-20) closed and was recorded.
    with QueueClient() as q:
        jid = q.submit("gated", {"kind": "restore", "spec": spec, "hold_at": 21, "gate": str(gate)}, device="cpu")
    start_daemon()
    pid = gate.wait_held(21)
    assert Store().get(jid).status == "running" and Store().get(jid).worker_pid == pid
    os.kill(pid, signal.SIGKILL)
    gate.open(21)
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=120, what="video job ended")
    job = Store().get(jid)
    assert job.status == "done", job.error
    assert job.attempts == 0
    with Store() as s:
        assert any("taken back" in e.message for e in s.events(jid))
    assert _count_frames(out) == 60
    log = open(job.log_path).read()
    assert log.count("attempt 1 of") == 2  # ran twice: the kill, then the resumed run
    resumed = re.search(r"video done after 6 of 6 segments \(resumed after (\d+)\)", log)
    assert resumed and int(resumed.group(1)) == 20, log[-2000:]  # the second run kept the two closed segments


def _pts(path) -> list[int]:
    import av

    with av.open(str(path)) as f:
        return [frame.pts for frame in f.decode(video=0)]


@pytest.mark.slow
def test_pausing_a_video_restore_closes_its_segment_early(queue_home, tmp_path, tiny_compact, gate, wait_for,
                                                            capsys):
    """Paused at frame 15 of segments of 10 (held there by the test), the worker closes the second
    segment with its 5 frames and pauses by itself: no frame is thrown away, progress stays at 15,
    and state.json records the segment as it was closed. Resumed, it goes on after frame 15."""
    model, _ = tiny_compact
    clip = tmp_path / "reel.mkv"
    _write_clip(clip, frames=40)
    source_pts = _pts(clip)
    out = tmp_path / "restored.mkv"
    assert main(["restore", str(clip), "-o", str(out), "-m", str(model), "--queue", "--device", "cpu",
                 "--segment-frames", "10", "--codec", "ffv1"]) == 0
    queued = int(capsys.readouterr().out)
    spec = Store().get(queued).spec
    assert main(["queue", "remove", str(queued)]) == 0  # the same spec runs below, held by the test
    with QueueClient() as q:
        jid = q.submit("gated", {"kind": "restore", "spec": spec, "hold_at": 15, "gate": str(gate)}, device="cpu")
    start_daemon()
    gate.wait_held(15)
    with QueueClient() as q:
        q.pause(jid)
    wait_for(lambda: Store().get(jid).status == "paused", timeout=60, what="the video job paused")
    job = Store().get(jid)
    with Store() as s:
        events = [e.message for e in s.events(jid)]
    assert "paused at a safe boundary" in events and not any("kill" in e or "gone" in e for e in events), events
    assert (job.done, job.total) == (15, 40)
    [state_path] = (queue_home / "jobs" / str(jid) / "video").glob("*/state.json")
    state = json.loads(state_path.read_text())
    assert [(s["frames"], s["first_pts"], s["last_pts"]) for s in state["segments"]] == [
        (10, source_pts[0], source_pts[9]), (5, source_pts[10], source_pts[14])]
    assert [p.name for p in sorted(state_path.parent.glob("segment-*"))] == ["segment-00000.nut",
                                                                             "segment-00001.nut"]

    gate.open(15)
    with QueueClient() as q:
        q.resume(jid)
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=120, what="the resumed job ended")
    job = Store().get(jid)
    assert job.status == "done", job.error
    assert _pts(out) == source_pts
    log = open(job.log_path).read()
    assert "video done after 5 of 5 segments (resumed after 15)" in log, log[-2000:]  # 10, 5 | 5, 10, 10


def test_degrade_and_train_specs_refuse_a_value_by_its_key(queue_home, tmp_path):
    """The degrade and train specs are declared documents too: a wrong value is refused at submit,
    naming its key and what the key allows; the spec stored for a good one has the shape it had."""
    from engine.document import InvalidValue

    _frames(tmp_path / "clean", n=1)
    good = {"input": str(tmp_path / "clean"), "output": str(tmp_path / "pairs"), "profile": "normal"}
    with QueueClient() as q:
        for key, bad, allowed in (("count", 0, "an integer 1 or more"), ("seed", -1, "an integer 0 or more"),
                                  ("workers", 1.5, "an integer 1 or more"), ("count", True, "an integer 1 or more"),
                                  ("crop", 4, "null or an integer 8 or more (pixels)"),
                                  ("clip_length", "2", "null or an integer 1 or more"),
                                  ("profile", 3, "a name or a path")):
            with pytest.raises(InvalidValue) as refused:
                q.submit("degrade", {**good, key: bad})
            assert str(refused.value) == f"{key} = {bad!r} invalid: allowed {allowed}"
        with pytest.raises(ArchivistError, match="^degrade job: spec key 'profile' is missing$"):
            q.submit("degrade", {"input": good["input"], "output": good["output"]})
        with pytest.raises(ArchivistError, match="^unknown key 'pairs': allowed keys are input, output, profile, "
                           "count, seed, crop, workers, clip_length$"):
            q.submit("degrade", {**good, "pairs": 2})
        for key, bad, allowed in (("resume", "yes", "true or false"),
                                  ("precision", "fp8", "null or one of auto, fp32, fp16, bf16"),
                                  ("name", 7, "null or text")):
            with pytest.raises(InvalidValue) as refused:
                q.submit("train", {"name": "run", key: bad})
            assert str(refused.value) == f"{key} = {bad!r} invalid: allowed {allowed}"
        assert q.list_jobs() == []
        job = q.get(q.submit("degrade", {**good, "count": 2}))
    assert job.spec == {**good, "count": 2, "seed": 0, "workers": 1, "crop": None, "clip_length": None}


def test_degrade_job_writes_a_dataset(queue_home, tmp_path, wait_for, capsys):
    src = tmp_path / "clean"
    _frames(src, n=3)
    out = tmp_path / "pairs"
    assert main(["degrade", str(src), "-o", str(out), "--profile", "normal", "--count", "2", "--seed", "7",
                 "--queue", "--priority", "4"]) == 0
    jid = int(capsys.readouterr().out)
    assert Store().get(jid).spec["profile"] == "normal" and Store().get(jid).priority == 4
    start_daemon()
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=60, what="degrade job ended")
    job = Store().get(jid)
    assert job.status == "done", job.error
    assert (job.done, job.total) == (6, 6)
    assert len(list((out / "lq").iterdir())) == 6 and len(list((out / "gt").iterdir())) == 6
    get_kind("degrade").cleanup(job.spec, Path(job.log_path).parent)
    assert not out.exists()


@pytest.mark.slow
def test_degrade_job_pauses_between_pairs_and_resumes(queue_home, tmp_path, gate, wait_for):
    """The dataset writer, held by the test after its fifth pair, is paused there: it stops between
    pairs with a consistent manifest, and the resumed job writes only the rest."""
    src = tmp_path / "clean"
    _frames(src, n=4)
    out = tmp_path / "pairs"
    spec = {"input": str(src), "output": str(out), "profile": "normal", "count": 5}
    with QueueClient() as q:
        jid = q.submit("gated", {"kind": "degrade", "spec": spec, "hold_at": 5, "gate": str(gate)})
    start_daemon()
    gate.wait_held(5)
    with QueueClient() as q:
        q.pause(jid)
    wait_for(lambda: Store().get(jid).status in ("paused", "done"), timeout=60, what="paused between pairs")
    assert Store().get(jid).status == "paused"
    with Store() as s:
        assert any(e.message == "paused at a safe boundary" for e in s.events(jid))
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 5
    assert len(list((out / "lq").iterdir())) == 5 and len(list((out / "gt").iterdir())) == 5
    gate.open(5)
    with QueueClient() as q:
        q.resume(jid)
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=60, what="resumed to an end")
    job = Store().get(jid)
    assert job.status == "done", job.error
    assert (job.done, job.total) == (20, 20)
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 20 and len({json.dumps(x, sort_keys=True) for x in lines}) == 20  # none written twice
    assert len(list((out / "lq").iterdir())) == 20


@pytest.mark.slow
def test_a_train_job_follows_runs_pause_and_stop(queue_home, tmp_path, wait_for, daemon_ticks, capsys):
    """Through the real daemon: `archivist runs pause` (the TUI's Training screen) pauses the
    queued run's job instead of it being restarted; `runs stop` ends the job, checkpoints kept."""
    import yaml

    from tests.train.trainkit import tiny_config, write_pairs

    write_pairs(tmp_path / "pairs")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(**{"train.total_iters": 100000, "train.checkpoint_every": 50,
                                                 "train.val_every": 100000, "train.log_every": 50})))
    assert main(["train", str(cfg), "--queue"]) == 0
    jid = int(capsys.readouterr().out.strip())
    start_daemon()
    run = queue_home / "runs" / "tiny"
    wait_for(lambda: (Store().get(jid).done or 0) >= 5, timeout=90, what="the run under way")
    assert Store().get(jid).output == str(run)

    assert main(["runs", "pause", "tiny"]) == 0
    wait_for(lambda: Store().get(jid).status == "paused", timeout=60, what="the job paused with its run")
    daemon_ticks(2)  # the daemon must not start it again
    assert Store().get(jid).status == "paused"
    assert list((run / "checkpoints").glob("iter_*.pt"))

    with QueueClient() as q:
        q.resume(jid)
    wait_for(lambda: Store().get(jid).status == "running", timeout=60, what="resumed")
    wait_for(lambda: (run / "run.json").exists() and '"running"' in (run / "run.json").read_text(),
             timeout=60, what="the run running again")
    assert main(["runs", "stop", "tiny"]) == 0
    wait_for(lambda: Store().get(jid).status == "cancelled", timeout=60, what="the job ended with its run")
    assert list((run / "checkpoints").glob("iter_*.pt"))


@pytest.mark.parametrize("model, words", [("nosuch", "no model named 'nosuch'"),
                                          ("archivist-starter:0.5:10", "sigma given but compact takes no noise level"),
                                          ("nosuch:", "no model named 'nosuch:'")])
def test_a_chain_the_job_could_not_load_is_refused_at_submit(queue_home, tmp_path, capsys, model, words):
    """Queued, a missing model or a noise level on a Compact failed three attempts later; now at once."""
    cv2.imwrite(str(tmp_path / "in.png"), np.zeros((16, 16, 3), np.uint8))
    assert main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "-m", model, "--queue"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    with QueueClient() as q:
        assert q.list_jobs() == []


def test_a_video_options_refusal_made_by_the_plan_names_its_key_in_the_video_section(queue_home, tmp_path):
    """The plan's refusals (the codec a container holds, a frame rate) read ``video.codec`` in a spec,
    like the options' own (``video.crf``)."""
    from engine.video.synthetic import write_test_clip

    clip_for_kinds = write_test_clip(tmp_path / "clip.mkv", frames=6)
    with QueueClient() as q:
        with pytest.raises(ArchivistError, match=r"^video\.codec = 'png' invalid: allowed"):
            q.submit("restore", {"input": str(clip_for_kinds), "output": str(clip_for_kinds.parent / "o.mkv"),
                                 "models": ["archivist-starter"], "video": {"codec": "png"}})
        with pytest.raises(ArchivistError, match=r"^video\.fps = 'abc' invalid"):
            q.submit("restore", {"input": str(clip_for_kinds), "output": str(clip_for_kinds.parent / "o.mkv"),
                                 "models": ["archivist-starter"], "video": {"fps": "abc"}})
        assert q.list_jobs() == []
