"""restore_video(cluster=...): the segments as Ray tasks on a local cluster of two worker processes.

One cluster (loopback only, 2 CPUs) serves the module; a run given ``cluster="local"`` in this
process uses it. The runs are compared frame by frame and timestamp by timestamp with a local run.
Tests that need the tasks to be at a known point hold them at a gate (``ARCHIVIST_CLUSTER_GATE``):
each task says it started and waits for the test's ``go``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ArchivistError
from engine.video.options import VideoOptions
from engine.video.restore import restore_video
from tests.video.conftest import read_video

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason='needs the cluster extra: pip install "archivist[cluster]"')
CLIP = {"frames": 18, "options": {"g": "7", "bf": "2"}}  # keyframes off the 5-frame segment grid, B-frames
DONE = re.compile(r"segment (\d+) done on Ray worker pid (\d+)")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """One local cluster for the module; Ray's token file (``~/.ray/auth_token``) goes to a temporary home."""
    from engine.cluster import check_address, start_local

    saved = {k: os.environ.get(k) for k in ("HOME", "RAY_AUTH_MODE")}
    os.environ["HOME"] = str(tmp_path_factory.mktemp("ray-home"))
    check_address("local")
    ray = start_local()
    try:
        yield ray
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Gate:
    """Holds the cluster's tasks until the test says go (see the module docstring)."""

    def __init__(self, folder: Path, monkeypatch):
        self.folder = folder
        folder.mkdir()
        monkeypatch.setenv("ARCHIVIST_CLUSTER_GATE", str(folder))

    def started(self) -> list[tuple[int, int]]:
        """(segment number, worker pid) of each task that reached the gate, in no order."""
        return [tuple(int(x) for x in p.name.split("-")[1:]) for p in self.folder.glob("started-*")]

    def wait_started(self, count: int, deadline: float = 90) -> list[tuple[int, int]]:
        end = time.monotonic() + deadline
        while len(self.started()) < count:
            assert time.monotonic() < end, f"fewer than {count} tasks reached the gate: {self.started()}"
            time.sleep(0.05)
        return self.started()

    def go(self) -> None:
        (self.folder / "go").touch()

    def in_background(self, action) -> threading.Thread:
        errors = []

        def run():
            try:
                action()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
                self.go()

        thread = threading.Thread(target=run, daemon=True)
        thread.errors = errors
        thread.start()
        return thread


def _same_video(a: Path, b: Path) -> None:
    pts_a, tb_a, frames_a, facts_a = read_video(a)
    pts_b, tb_b, frames_b, facts_b = read_video(b)
    assert pts_a == pts_b and tb_a == tb_b and facts_a == facts_b
    assert len(frames_a) == len(frames_b) == CLIP["frames"]
    assert all(np.array_equal(x, y) for x, y in zip(frames_a, frames_b))


def _done_segments(text: str) -> list[tuple[int, int]]:
    return [(int(n), int(pid)) for n, pid in DONE.findall(text)]


@needs_ray
@pytest.mark.slow
def test_cluster_run_equals_local_run_on_two_workers(ray_cluster, clip, chain, tmp_path, caplog, monkeypatch):
    """Frame for frame and pts for pts the local run's file; each segment logged with its worker's pid,
    two or more pids and none the head's (no silent local fallback)."""
    src = clip("c.mp4", **CLIP)
    local = tmp_path / "local.mkv"
    restore_video(src, local, chain, VideoOptions(segment_frames=5))

    gate = Gate(tmp_path / "gate", monkeypatch)
    opener = gate.in_background(lambda: (gate.wait_started(2), gate.go()))  # two tasks at once: two processes
    out = tmp_path / "cluster.mkv"
    with caplog.at_level(logging.INFO, logger="engine.cluster"):
        result = restore_video(src, out, chain, VideoOptions(segment_frames=5), cluster="local")
    opener.join(5)
    assert not opener.errors
    assert result.status == "done" and result.segments_done == 4 and result.frames == 18
    _same_video(out, local)
    done = _done_segments(caplog.text)
    assert sorted(n for n, _ in done) == [1, 2, 3, 4]  # each segment once
    pids = {pid for _, pid in done}
    assert len(pids) >= 2 and os.getpid() not in pids
    assert not result.job_dir.exists()  # segments and state removed, as after a local run


@needs_ray
@pytest.mark.slow
def test_a_folder_of_images_on_the_cluster_equals_the_local_run(ray_cluster, chain, tmp_path, caplog):
    """Ten scans (one gray) in two batches of eight and two: the same files, byte for byte."""
    import cv2

    from engine.inference.restore import restore_images

    src = tmp_path / "scans"
    src.mkdir()
    rng = np.random.default_rng(5)
    for i in range(10):
        image = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        if i == 3:
            image[..., 1] = image[..., 2] = image[..., 0]  # black and white, stored as RGB
        assert cv2.imwrite(str(src / f"scan{i:02d}.png"), image)
    local = restore_images(src, tmp_path / "local/", chain)
    with caplog.at_level(logging.INFO, logger="engine.cluster"):
        spread = restore_images(src, tmp_path / "cluster/", chain, cluster="local")
    assert [p.name for p in spread.outputs] == [p.name for p in local.outputs] and len(local.outputs) == 10
    for a, b in zip(local.outputs, spread.outputs):
        assert a.read_bytes() == b.read_bytes(), a.name
    batches = re.findall(r"images batch (\d+) done on Ray worker pid (\d+)", caplog.text)
    assert sorted(int(n) for n, _ in batches) == [1, 2]
    assert os.getpid() not in {int(pid) for _, pid in batches}
    assert not list((tmp_path / "cluster").glob(".*"))  # no partial file left


def _stop_after_segments(n: int):
    closed = []
    return {"on_segment": lambda i, total: closed.append(i), "should_stop": lambda: len(closed) >= n}


@needs_ray
@pytest.mark.slow
def test_a_paused_cluster_run_is_finished_by_a_local_run_and_back(ray_cluster, clip, chain, tmp_path):
    """Cluster and local runs of one restore share the job key, its segments and state.json."""
    src = clip("r.mp4", **CLIP)
    local = tmp_path / "local.mkv"
    restore_video(src, local, chain, VideoOptions(segment_frames=5))

    # A cluster run paused after one segment; a local run finishes it.
    out = tmp_path / "a.mkv"
    paused = restore_video(src, out, chain, VideoOptions(segment_frames=5), cluster="local",
                           **_stop_after_segments(1))
    assert paused.status == "paused" and not out.exists()
    state = json.loads((paused.job_dir / "state.json").read_text())
    kept = len(state["segments"]) + len(state.get("ahead", []))
    assert kept >= 1
    done = restore_video(src, out, chain, VideoOptions(segment_frames=5, resume=True))
    assert done.status == "done" and done.job_key == paused.job_key
    assert done.resumed_from == sum(s["frames"] for s in state["segments"])
    _same_video(out, local)

    # A local run paused inside a segment (7 frames: segments of 5 and 2); a cluster run finishes it.
    out = tmp_path / "b.mkv"
    written = [0]

    def progress(done_frames, total):
        written[0] = done_frames

    paused = restore_video(src, out, chain, VideoOptions(segment_frames=5), progress=progress,
                           should_stop=lambda: written[0] >= 7)
    assert paused.status == "paused" and paused.frames == 7
    segs = []
    done = restore_video(src, out, chain, VideoOptions(segment_frames=5, resume=True), cluster="local",
                         on_segment=lambda i, n: segs.append(i))
    assert done.status == "done" and done.job_key == paused.job_key and done.resumed_from == 7
    assert sorted(segs) == [3, 4, 5]  # 3 frames back to the grid, then 5, then the last 3
    _same_video(out, local)


@needs_ray
@pytest.mark.slow
def test_a_killed_worker_still_gives_the_identical_file(ray_cluster, clip, chain, tmp_path, caplog, monkeypatch):
    src = clip("k.mp4", **CLIP)
    local = tmp_path / "local.mkv"
    restore_video(src, local, chain, VideoOptions(segment_frames=5))

    gate = Gate(tmp_path / "gate", monkeypatch)
    killed = []

    def kill_one():
        number, pid = gate.wait_started(2)[0]
        os.kill(pid, signal.SIGKILL)  # mid-run: the task holds its segment's packets and the model
        killed.append((number, pid))
        gate.go()

    killer = gate.in_background(kill_one)
    out = tmp_path / "cluster.mkv"
    with caplog.at_level(logging.INFO, logger="engine.cluster"):
        result = restore_video(src, out, chain, VideoOptions(segment_frames=5), cluster="local")
    killer.join(5)
    assert not killer.errors and killed
    assert result.status == "done"
    _same_video(out, local)
    done = _done_segments(caplog.text)
    assert sorted(n for n, _ in done) == [1, 2, 3, 4]  # the lost task ran again, and counted once
    number, pid = killed[0]
    assert pid not in {p for _, p in done}
    assert number + 1 in [n for n, _ in done]


@needs_ray
@pytest.mark.slow
def test_queued_restore_job_runs_on_the_cluster(ray_cluster, clip, tiny_compact, tmp_path, archivist_home):
    """``archivist restore --queue --cluster ADDRESS``: the daemon's worker process spreads the segments
    over the cluster; its job log names a Ray worker pid per segment, none its own or the test's."""
    from archivist_tui.cli import main
    from engine.inference.chain import Chain, Stage
    from engine.queue import Store
    from engine.queue.daemon import start_daemon
    from tests.queue.conftest import _stop_everything, _wait_for, write_config

    model, _ = tiny_compact
    src = clip("q.mp4", **CLIP)
    local = tmp_path / "local.mkv"
    chain = Chain.load([Stage(str(model))], device="cpu", precision="fp32", backend="auto")
    restore_video(src, local, chain, VideoOptions(segment_frames=5))
    address = ray_cluster.get_runtime_context().gcs_address  # the daemon's worker joins the test's cluster
    out = tmp_path / "queued.mkv"
    assert main(["restore", str(src), "-o", str(out), "-m", str(model), "--precision", "fp32", "--device", "cpu",
                 "--segment-frames", "5", "--cluster", address, "--queue"]) == 0
    with Store() as store:
        [job] = store.jobs()
    assert job.spec["cluster"] == address
    write_config(archivist_home)
    try:
        start_daemon()
        _wait_for(lambda: Store().get(job.id).status in ("done", "failed"), timeout=120, what="the job to end")
        job = Store().get(job.id)
        assert job.status == "done", job.error
        log = Path(job.log_path).read_text()
    finally:
        _stop_everything()
    _same_video(out, local)
    done = _done_segments(log)
    assert sorted(n for n, _ in done) == [1, 2, 3, 4], log[-3000:]
    pids = {pid for _, pid in done}
    assert job.worker_pid not in pids and os.getpid() not in pids




def test_without_ray_cluster_gives_the_install_hint(clip, tiny_compact, tmp_path, monkeypatch, capsys):
    from archivist_tui.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    model, _ = tiny_compact
    src = clip("h.mp4", frames=4)
    for extra in ([], ["--queue"]):
        code = main(["restore", str(src), "-o", str(tmp_path / "o.mkv"), "-m", str(model), "--cluster", "local",
                     *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code != 0 and len(err) == 1 and err[0].startswith("archivist: error:")
        assert 'pip install "archivist[cluster]"' in err[0]
    assert not (tmp_path / "o.mkv").exists()


@needs_ray
@pytest.mark.parametrize("options,output,words", [
    ({"start": 0.1}, "o.mkv", "cluster does not combine with start"),  # keys: the CLI shows --cluster, --start
    ({"deinterlace": True}, "o.mkv", "cluster does not combine with deinterlace"),
    ({}, "frames/", "image sequences"),
])
def test_what_the_cluster_does_not_do_is_refused_before_anything_is_written(clip, identity_chain, tmp_path,
                                                                             archivist_home, options, output, words):
    src = clip("n.mp4", frames=4)
    with pytest.raises(ArchivistError, match=re.escape(words)):
        restore_video(src, f"{tmp_path}/{output}", identity_chain, VideoOptions(**options), cluster="local")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.mp4"]
    assert not (archivist_home / "jobs").exists() or not any((archivist_home / "jobs").iterdir())


@pytest.mark.parametrize("address", ["", "ray://", "http://x:1", "host", "local cluster"])
def test_a_bad_cluster_address_is_refused_by_name(address):
    from engine.cluster import check_address

    with pytest.raises(ArchivistError, match="^cluster = .* invalid: allowed auto, local"):
        check_address(address)


@needs_ray
@pytest.mark.slow
def test_local_cluster_listens_on_loopback_only(ray_cluster):
    import psutil

    me = psutil.Process()
    listening = []
    for proc in [me, *me.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        listening += [(proc.name(), c.laddr.ip) for c in conns if c.status == psutil.CONN_LISTEN]
    assert listening  # the GCS, the raylet and the workers listen somewhere
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for _, ip in listening), listening
    assert ray_cluster.get_runtime_context().gcs_address.startswith("127.0.0.1:")
