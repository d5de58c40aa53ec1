"""Job kinds for the tests only, whose slowness the test controls.

They reach the daemon and its workers (separate processes) through the environment:
``ARCHIVIST_TEST_KINDS=tests.queue.kinds_for_tests`` (the ``test_kinds`` fixture in
``tests/conftest.py`` sets it, with the source root on ``PYTHONPATH``).

A *gate* is a folder the test owns. A job that reaches a hold point ``K`` writes ``held-K`` there
(its worker's pid, written atomically) and waits until the test creates ``open-K``; a pause, cancel
or daemon stop that arrives meanwhile ends the wait at that safe boundary. So a test can stop a job
at an exact point, act on it (pause, kill -9, quit the TUI), and let it go on, on any machine.

- ``selftest``: counts to ``steps`` with a resumable state file, then writes its output.
- ``gated``: runs a real kind (``restore``, ``degrade``...) unchanged and holds it in its progress
  report once ``done`` reaches ``hold_at``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from engine.errors import ArchivistError
from engine.queue.kinds import JobContext, JobKind, get_kind
from engine.queue.kinds.common import check_keys, remove_path, require

log = logging.getLogger("archivist.testkinds")

GATE_POLL = 0.02  # seconds between looks at the gate folder


def held_marker(gate: str | os.PathLike, point: int) -> Path:
    return Path(gate) / f"held-{point}"


def open_marker(gate: str | os.PathLike, point: int) -> Path:
    return Path(gate) / f"open-{point}"


def wait_at_gate(gate: str, point: int, ctx: JobContext) -> bool:
    """Hold at ``point`` until the test opens it (True) or the job is asked to stop (False)."""
    if open_marker(gate, point).exists():
        return True
    held = held_marker(gate, point)
    tmp = held.with_name(f".{held.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, held)
    log.info("job %d: held at %d until %s exists", ctx.job_id, point, open_marker(gate, point))
    while not open_marker(gate, point).exists():
        if ctx.should_stop():
            log.info("job %d: asked to stop while held at %d", ctx.job_id, point)
            return False
        time.sleep(GATE_POLL)
    return True


def _gate(spec: dict, kind: str) -> str | None:
    gate = spec.get("gate")
    if gate is not None and (not isinstance(gate, str) or not Path(gate).is_dir()):
        raise ArchivistError(f"{kind} job: gate {gate!r} must be an existing folder")
    return gate


# -- selftest ---------------------------------------------------------------------------------------
SELFTEST_KEYS = ("output", "steps", "step_time", "fail_times", "crash_times", "counter", "gate", "hold_at")


def _selftest_validate(spec: dict) -> dict:
    check_keys(spec, SELFTEST_KEYS, "selftest")
    require(spec, "output", "selftest")
    steps = spec.get("steps", 5)
    if not isinstance(steps, int) or steps < 1:
        raise ArchivistError("selftest job: steps must be an integer >= 1")
    hold_at = spec.get("hold_at", [])
    if not isinstance(hold_at, list) or not all(isinstance(k, int) and 0 <= k <= steps for k in hold_at):
        raise ArchivistError(f"selftest job: hold_at must be a list of step counts from 0 to {steps}")
    gate = _gate(spec, "selftest")
    if hold_at and gate is None:
        raise ArchivistError("selftest job: hold_at needs a gate folder")
    return {"output": spec["output"], "steps": steps, "step_time": float(spec.get("step_time", 0.02)),
            "fail_times": int(spec.get("fail_times", 0)), "crash_times": int(spec.get("crash_times", 0)),
            "counter": spec.get("counter"), "gate": gate, "hold_at": hold_at}


def _selftest_run(spec: dict, ctx: JobContext) -> bool:
    """Counts to ``steps`` with a resumable state file, then writes its output atomically.

    The output is created exclusively (``os.link``); each completion appends ``done ID`` to
    ``counter`` (``twice ID`` if the output already existed) so tests see that no job finished twice;
    ``fail_times`` makes the first attempts raise, ``crash_times`` makes them abort the worker.
    With ``hold_at`` it waits at the gate when it has done that many steps (``steps`` itself: just
    before it writes its output). Each run logs ``selftest job ID: run starts at step N``.
    """
    out = Path(spec["output"])
    if out.exists():  # finished before a crash hid it from the store: do not run again
        ctx.progress(spec["steps"], spec["steps"])
        return True
    fails = ctx.work_dir / "fails"
    failed = int(fails.read_text()) if fails.exists() else 0
    if failed < spec["fail_times"]:
        fails.write_text(str(failed + 1))
        raise RuntimeError(f"selftest failure {failed + 1} of {spec['fail_times']}")
    crashes = ctx.work_dir / "crashes"
    crashed = int(crashes.read_text()) if crashes.exists() else 0
    if crashed < spec.get("crash_times", 0):
        crashes.write_text(str(crashed + 1))
        os.abort()  # a worker that dies by itself (SIGABRT), as a broken native library would
    state = ctx.work_dir / "state.json"
    step = json.loads(state.read_text())["step"] if state.exists() else 0
    log.info("selftest job %d: run starts at step %d", ctx.job_id, step)
    while True:
        if step in spec.get("hold_at", []) and not wait_at_gate(spec["gate"], step, ctx):
            return False
        if step >= spec["steps"]:
            break
        if ctx.should_stop():
            return False
        time.sleep(spec["step_time"])
        step += 1
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"step": step}))
        os.replace(tmp, state)
        ctx.progress(step, spec["steps"])
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(f"job {ctx.job_id} steps {step}\n")
    try:
        os.link(tmp, out)  # exclusive: a second completion of the same job cannot overwrite quietly
        record = f"done {ctx.job_id}"
    except FileExistsError:
        record = f"twice {ctx.job_id}"
    tmp.unlink()
    if spec.get("counter"):
        with open(spec["counter"], "a") as f:
            f.write(record + "\n")
            f.flush()
            os.fsync(f.fileno())
    return True


def _selftest_cleanup(spec: dict, work_dir: Path) -> None:
    remove_path(Path(spec["output"]))
    remove_path(work_dir / "state.json")


SELFTEST = JobKind("selftest", _selftest_validate, _selftest_run, _selftest_cleanup,
                   lambda spec: spec.get("output"))


# -- gated: a real kind, held at a point of its progress -----------------------------------------
def _gated_validate(spec: dict) -> dict:
    check_keys(spec, ("kind", "spec", "hold_at", "gate"), "gated")
    inner = get_kind(require(spec, "kind", "gated"))
    hold_at = require(spec, "hold_at", "gated", int)
    gate = _gate(spec, "gated")
    if gate is None:
        raise ArchivistError("gated job: spec key 'gate' is missing")
    return {"kind": inner.name, "spec": inner.validate(require(spec, "spec", "gated", dict)),
            "hold_at": hold_at, "gate": gate}


def _gated_run(spec: dict, ctx: JobContext) -> bool | str:
    """Runs the inner kind; its progress report holds at the gate once ``done >= hold_at``.

    The real work is untouched: only the thread that reports progress waits (the video pipeline's
    sink, the dataset writer's loop), so the job stops at a real point of its own work.
    """

    def progress(done: float, total: float) -> None:
        ctx.progress(done, total)
        if done >= spec["hold_at"] and not ctx.should_stop():
            wait_at_gate(spec["gate"], spec["hold_at"], ctx)  # a stop request: the kind stops at its boundary

    held = JobContext(job_id=ctx.job_id, device=ctx.device, work_dir=ctx.work_dir, progress=progress,
                      should_stop=ctx.should_stop)
    return get_kind(spec["kind"]).run(spec["spec"], held)


GATED = JobKind("gated", _gated_validate, _gated_run,
                lambda spec, work_dir: get_kind(spec["kind"]).cleanup(spec["spec"], work_dir),
                lambda spec: get_kind(spec["kind"]).output(spec["spec"]))

KINDS = (SELFTEST, GATED)


class Gate:
    """The test's side of a gate folder: wait until a job is held at a point, then open it."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def __str__(self) -> str:
        return str(self.folder)

    def held(self, point: int) -> int | None:
        """The pid of the worker held at ``point``, or None while none has reached it."""
        try:
            return int(held_marker(self.folder, point).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def wait_held(self, point: int, timeout: float = 120.0) -> int:
        """Wait (generously) until a job is held at ``point``; its worker's pid."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.held(point)
            if pid is not None:
                return pid
            time.sleep(0.02)
        raise AssertionError(f"no job reached hold point {point} of {self.folder} within {timeout:g} s")

    def open(self, point: int) -> None:
        open_marker(self.folder, point).touch()
