"""One film restored across a Ray cluster: the segment, the unit of resume, is the unit of distribution.

The head (the process that runs :func:`engine.video.restore.restore_video` with ``cluster=``)
indexes the source's packets (:mod:`engine.video.packets`), puts the chain's model files into
the object store once, and for each segment still to do puts that segment's packets there and
starts one Ray task. The task decodes the packets, restores the frames with the chain, encodes
them with the run's encoder plan into a segment file of its own and returns the file's bytes; the
head writes it where a local run writes its segments and records it in ``state.json``, so a local
run can take over (and a cluster run can take over a local one). The final file is assembled by
stream copy exactly as a local run does.

Ray is an optional extra (``pip install "archivist[cluster]"``); everything here imports it lazily.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from engine.atomic import atomic_write
from engine.document import Conflict, InvalidValue
from engine.errors import ArchivistError

log = logging.getLogger(__name__)

INSTALL_HINT = 'restoring on a cluster needs Ray: pip install "archivist[cluster]"'
LOCAL_CPUS = 2  # a cluster started in-process (``local``): two worker processes, a test and a trial
GATE_ENV = "ARCHIVIST_CLUSTER_GATE"  # tests: tasks announce themselves there and wait for a "go" file
_ADDRESS = re.compile(r"^(auto|local|ray://[^\s/:]+:\d{1,5}|[^\s/:]+:\d{1,5})$")
_CHAINS: dict[str, object] = {}  # in a worker process: the chain of each recipe, loaded once


def _remote_task(ray, fn):
    """``fn`` as a Ray task: one GPU per task where the cluster has GPUs, else one CPU; a task lost
    with its worker is retried. Returns (resources, gpu, slots that can run at once, task)."""
    resources = ray.cluster_resources()
    gpu = resources.get("GPU", 0) >= 1
    slots = max(1, int(resources.get("GPU" if gpu else "CPU", 1)))
    task = ray.remote(fn).options(num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1,
                                  max_retries=3, retry_exceptions=False)
    return resources, gpu, slots, task

def check_address(address: str) -> str:
    """Check a cluster address (``--cluster ADDRESS``, a job's ``cluster``) (``auto``, ``local``, ``ray://host:port`` or ``host:port``) and that
    Ray is installed; returns the address. Raises :class:`ArchivistError` with the install hint."""
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise InvalidValue("cluster", address, "auto, local, ray://HOST:PORT or HOST:PORT")
    _ray_environment(address)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ArchivistError(INSTALL_HINT) from None
    return address


@contextmanager
def connect(address: str):
    """Connect to the cluster at ``address`` for the duration of the block.

    ``local`` starts a cluster in this process bound to 127.0.0.1 only, with the dashboard and
    usage statistics off, and stops it afterwards. A process already connected (a test's cluster,
    a caller's own ``ray.init``) is used as it is and left running.
    """
    check_address(address)
    import ray

    if ray.is_initialized():
        log.info("cluster: using the Ray cluster this process is connected to (%s)",
                 ray.get_runtime_context().gcs_address)
        yield ray
        return
    if address == "local":
        start_local()
    else:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise Conflict(("cluster",), f"{{0}} {address}: cannot connect: {exc}") from None
    try:
        log.info("cluster: connected to %s (%s)", address, _describe_resources(ray.cluster_resources()))
        yield ray
    finally:
        ray.shutdown()


def start_local(num_cpus: int = LOCAL_CPUS):
    """Start a Ray cluster in this process on loopback only (dashboard off, no usage statistics).

    Raises :class:`ArchivistError` if Ray bound anything but 127.0.0.1 (then nothing is left running).
    """
    _ray_environment("local")
    import ray

    ray.init(address="local", num_cpus=num_cpus, num_gpus=0, include_dashboard=False,
             _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False,
             namespace="archivist")
    gcs = ray.get_runtime_context().gcs_address
    if not gcs.startswith("127.0.0.1:"):
        ray.shutdown()
        raise Conflict(("cluster",), f"{{0}} local: Ray listened on {gcs}, not on 127.0.0.1 only: stopped (import ray "
                       "only after RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 is set)")
    log.info("cluster: local Ray cluster on %s, %d CPUs, dashboard off", gcs, num_cpus)
    return ray


def _ray_environment(address: str) -> None:
    """Settings Ray reads when it is imported: no usage report leaves the machine, and for ``local``
    "127.0.0.1" stays the loopback address (Ray otherwise swaps it for the machine's outward one and
    listens there)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if address == "local":
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


def _describe_resources(resources: dict) -> str:
    return ", ".join(f"{resources.get(k, 0):g} {k}" for k in ("CPU", "GPU"))


# -- the task ---------------------------------------------------------------------------------------
def _model_recipe(chain) -> dict:
    """The chain as data for the object store: each stage's model file (bytes, name), strength, σ, and
    how it was loaded. A worker loads it exactly as the head did, from its own copy of the files."""
    stages = []
    for s in chain.stages:
        if s.path is None:
            raise Conflict(("cluster",), "{0} needs a chain loaded from model files")
        stages.append({"file": s.path.name, "data": s.path.read_bytes(), "strength": s.stage.strength,
                       "sigma": s.stage.sigma, "sha256": s.sha256})
    key = hashlib.sha256(repr([(s["sha256"], s["strength"], s["sigma"]) for s in stages]).encode()
                         + repr(sorted(chain.load_args.items())).encode()).hexdigest()[:16]
    return {"key": key, "stages": stages, "load_args": dict(chain.load_args)}


def _chain_for(recipe: dict, device: str):
    """The recipe's chain in this worker, loaded once per process."""
    cached = _CHAINS.get(recipe["key"] + device)
    if cached is not None:
        return cached
    import tempfile

    from engine.inference.chain import Chain, Stage

    folder = Path(tempfile.mkdtemp(prefix="archivist-models-"))
    stages = []
    for i, s in enumerate(recipe["stages"]):
        path = folder / f"{i}" / s["file"]  # the file's own name: the chain names its stages by it
        path.parent.mkdir()
        path.write_bytes(s["data"])
        stages.append(Stage(str(path), s["strength"], s["sigma"]))
    chain = Chain.load(stages, device=device, **recipe["load_args"])
    _CHAINS[recipe["key"] + device] = chain
    return chain


def _wait_gate(gate: str, number: int) -> None:
    """Tests only: say this task has started (its pid) and wait for the test's ``go`` (2 minutes at most)."""
    folder = Path(gate)
    (folder / f"started-{number}-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while not (folder / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def restore_segment(recipe: dict, bundle: list, job: dict) -> dict:
    """One Ray task: decode a segment's packets, restore, encode; the encoded segment's bytes back.

    ``job`` carries the segment range, the codec parameters, the encoder plan and layout, the
    torch thread count of the head (pinned here too, so the arithmetic, and so the output, is the
    same) and the pipeline's batch and queue sizes.
    """
    import tempfile

    import torch

    from engine.video.encode import SegmentWriter
    from engine.video.packets import decode_bundle
    from engine.video.pipeline import run_overlapped

    if job.get("gate"):
        _wait_gate(job["gate"], job["segment"].number)
    torch.set_num_threads(job["threads"])
    device = "cuda" if job.get("gpu") else "cpu"
    chain = _chain_for(recipe, device)
    segment = job["segment"]
    frames = decode_bundle(job["codec"], job["time_base"], bundle, segment, job["first_index"],
                           job["high_bit_depth"], job["gray"])
    with tempfile.TemporaryDirectory(prefix="archivist-segment-") as tmp:
        path = Path(tmp) / "segment.nut"
        writer = SegmentWriter(path, job["plan"], job["layout"], threads=0)
        count = 0

        def sink(frame) -> None:
            nonlocal count
            writer.write(frame.rgb, frame.pts - job["pts_offset"], frame.duration)
            count += 1

        try:
            run_overlapped(frames, chain.run_batch, sink, batch=job["batch"], queue_size=job["queue_size"],
                           prepare=job["plan"].prepare)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        data = path.read_bytes()
    import socket

    return {"data": data, "frames": count, "reorder": writer.reorder, "pid": os.getpid(),
            "node": socket.gethostname()}


# -- folders of images -----------------------------------------------------------------------------
IMAGES_PER_TASK = 8  # a folder of scans: one task per batch of images


def restore_images_task(recipe: dict, batch: list[dict], job: dict) -> dict:
    """One Ray task: restore a batch of images (their file bytes) and return the encoded outputs.

    Each image is read from a temporary copy under its own name, so it is decoded exactly as the
    head would decode the file (:func:`engine.inference.restore.restore_picture`).
    """
    import socket
    import tempfile

    import torch

    from engine.inference.pictures import restore_picture

    if job.get("gate"):
        _wait_gate(job["gate"], job["number"])
    torch.set_num_threads(job["threads"])
    chain = _chain_for(recipe, "cuda" if job.get("gpu") else "cpu")
    out = []
    with tempfile.TemporaryDirectory(prefix="archivist-images-") as tmp:
        for item in batch:
            src = Path(tmp) / item["name"]
            src.write_bytes(item["data"])
            out.append(restore_picture(src, Path(item["output"]), chain, job["tone"]))
            src.unlink()
    return {"images": out, "pid": os.getpid(), "node": socket.gethostname()}


def run_images(ray, pairs, chain, ledger, finals: dict, progress, should_stop, tone: str):
    """Restore a folder's images on the connected cluster, :data:`IMAGES_PER_TASK` per task.

    Images finished by an earlier attempt (final, or staged in the ledger) are skipped as a local
    run skips them; each returned image is staged (partial name, ledger) at once, so a pause
    (which cancels the tasks in flight) or a lost head keeps what came back.
    """
    import torch

    from engine.inference.pictures import RestoreResult, stage_picture, warn_neutral

    result = RestoreResult()
    staged = set(ledger.paths("staged"))
    todo = []
    for src, dst in pairs:
        partial = ledger.partial_path(dst)
        if str(dst.absolute()) in finals or (str(partial.absolute()) in staged and partial.is_file()):
            result.skipped += 1
        else:
            todo.append((src, dst))
    batches = [todo[i:i + IMAGES_PER_TASK] for i in range(0, len(todo), IMAGES_PER_TASK)]
    resources, gpu, slots, task = _remote_task(ray, restore_images_task)
    recipe = ray.put(_model_recipe(chain))
    common = {"tone": tone, "threads": torch.get_num_threads(), "gpu": gpu, "gate": os.environ.get(GATE_ENV)}
    log.info("cluster: %d image(s) in %d task(s) on %s", len(todo), len(batches), _describe_resources(resources))
    pending: dict = {}
    waiting = list(enumerate(batches))
    done = result.skipped
    neutral = 0
    try:
        while waiting or pending:
            while waiting and len(pending) < 2 * slots:
                number, batch = waiting.pop(0)
                items = [{"name": src.name, "data": src.read_bytes(), "output": str(dst)} for src, dst in batch]
                pending[task.remote(recipe, items, dict(common, number=number))] = (number, batch)
            if should_stop is not None and should_stop():
                for ref in pending:
                    ray.cancel(ref)
                result.stopped = True
                break
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
            for ref in ready:
                number, batch = pending.pop(ref)
                returned = _task_result(ray, ref, f"images batch {number + 1}")
                for (src, dst), (data, was_neutral) in zip(batch, returned["images"]):
                    stage_picture(ledger, dst, data)
                    neutral += was_neutral
                    log.info("restored %s -> %s", src, dst)
                done += len(batch)
                log.info("images batch %d done on Ray worker pid %d at %s", number + 1, returned["pid"],
                         returned["node"])
                if progress is not None:
                    progress(done, len(pairs))
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise
    warn_neutral(neutral)
    return result


# -- the head ---------------------------------------------------------------------------------------
def run_segments(ray, run, plan, chain, options, progress: Callable[[int, int | None], None] | None,
                 should_stop: Callable[[], bool] | None) -> bool:
    """Restore the segments of ``run`` not yet finished on the connected cluster; True if it stopped early.

    Each finished segment is written to the job folder and recorded at once (``state.json``: in
    order under ``segments``, the ones finished ahead of an unfinished one under ``ahead``), so a
    killed or paused run loses only the tasks in flight. A pause cancels those.
    """
    import torch

    from engine.video.packets import build_index, plan_segments, read_bundle

    index = build_index(plan.input_path)
    after = run.segments[-1]["last_pts"] if run.segments else None
    todo = plan_segments(index, after, run.frames_before, options.segment_frames, len(run.segments))
    run.total_frames = run.frames_before + sum(s.frames for s in todo)
    if run.pts_offset is None:
        run.pts_offset = 0
        run.time_base = index.time_base
    finished = {a["index"]: a for a in run.ahead if _matches(a, todo)}
    todo = [s for s in todo if s.number not in finished]
    run.ahead = list(finished.values())
    if finished:
        log.info("cluster: %d segment(s) finished ahead by an earlier run are kept", len(finished))
    resources, gpu, slots, task = _remote_task(ray, restore_segment)
    recipe = ray.put(_model_recipe(chain))
    layout = run.layout_for(_Timed(index.time_base))
    common = {"codec": index.codec, "time_base": index.time_base, "plan": run.plan, "layout": layout,
              "high_bit_depth": plan.high_bit_depth, "gray": plan.gray, "threads": torch.get_num_threads(),
              "batch": options.batch, "queue_size": options.queue_size, "gpu": gpu, "pts_offset": run.pts_offset,
              "gate": os.environ.get(GATE_ENV)}
    first_index = {s.number: run.frames_before + sum(t.frames for t in todo if t.number < s.number)
                   + sum(a["frames"] for a in finished.values() if a["index"] < s.number) for s in todo}
    log.info("cluster: %d segment(s) to restore on %s (one task each, %s per task)", len(todo),
             _describe_resources(resources), "1 GPU" if gpu else "1 CPU")
    _advance(run, finished)
    pending: dict = {}
    waiting = list(todo)
    head_pid = os.getpid()
    done_frames = run.frames_before + sum(a["frames"] for a in run.ahead)
    try:
        while waiting or pending:
            # A window of tasks in flight: the object store holds a few segments' packets, not the film.
            while waiting and len(pending) < 2 * slots:
                seg = waiting.pop(0)
                job = dict(common, segment=seg, first_index=first_index[seg.number])
                pending[task.remote(recipe, ray.put(read_bundle(index, seg)), job)] = seg
            if should_stop is not None and should_stop():
                for ref in pending:
                    ray.cancel(ref)
                log.info("cluster: paused; %d task(s) in flight cancelled", len(pending))
                return True
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
            for ref in ready:
                seg = pending.pop(ref)
                result = _task_result(ray, ref, f"segment {seg.number + 1}")
                _keep(run, seg, result, finished)
                done_frames += seg.frames
                log.info("segment %d done on Ray worker pid %d at %s%s", seg.number + 1, result["pid"],
                         result["node"], " (the head's own pid!)" if result["pid"] == head_pid else "")
                if progress:
                    progress(done_frames, run.total_frames)
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise
    return False


class _Timed:
    """Just a time base, for :meth:`engine.video.restore._Run.layout_for`."""

    def __init__(self, time_base):
        self.time_base = time_base


def _matches(record: dict, todo) -> bool:
    """A segment finished ahead is kept only if it is exactly one still to do (same frames)."""
    return any(s.number == record["index"] and s.first_pts == record["first_pts"] and s.frames == record["frames"]
               for s in todo)


def _task_result(ray, ref, what: str) -> dict:
    """A task's return value; its failure as one line (the task's own ArchivistError as it was)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, ArchivistError):
            raise ArchivistError(str(cause)) from None
        raise ArchivistError(f"{what} failed on the cluster: {cause or exc}") from None
    except ray.exceptions.RayError as exc:
        raise ArchivistError(f"{what} lost on the cluster (after Ray's retries): {exc}") from None


def _keep(run, seg, result: dict, finished: dict) -> None:
    """Write a returned segment under its final name (via a partial name) and record it."""
    if result["frames"] != seg.frames:
        raise ArchivistError(f"segment {seg.number + 1}: {result['frames']} frames came back, {seg.frames} expected")
    # Synced: a resume trusts every finished segment it finds. The partial name is the one a resume clears.
    atomic_write(run.segment_path(seg.number), lambda tmp: tmp.write_bytes(result["data"]),
                 temp=run.segment_path(seg.number, partial=True), fsync=True, parents=False)
    finished[seg.number] = {"index": seg.number, "frames": seg.frames, "first_pts": seg.first_pts,
                            "last_pts": seg.last_pts, "reorder": result["reorder"], "worker": result["pid"]}
    _advance(run, finished)
    run.announce(seg.number)


def _advance(run, finished: dict) -> None:
    """Move the finished segments that now follow on into ``run.segments``; the rest stay ahead."""
    while len(run.segments) in finished:
        run.segments.append(finished.pop(len(run.segments)))
    run.ahead = sorted(finished.values(), key=lambda a: a["index"])
    run.save_state()
