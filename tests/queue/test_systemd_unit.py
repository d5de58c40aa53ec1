"""The shipped systemd unit keeps docs/daemon.md's promises (issue 26, case 6).

systemd does not run here, so the test reads the unit's settings and then does to a
``daemon start --foreground`` exactly what systemd does with them: with ``KillMode=process`` a
crash or a stop touches the main process only. Workers must then outlive a crashed daemon and be
adopted by the next one, and a SIGTERM to the daemon alone must stop every worker cleanly before
the daemon exits, within ``TimeoutStopSec``.
"""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from engine.queue import QueueClient, Store
from engine.queue.config import QueueConfig
from engine.queue.daemon import _source_root_env

UNIT = Path(__file__).resolve().parents[2] / "docs" / "archivist.service"


def unit_settings() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_signals_the_daemon_alone_and_waits_longer_than_the_daemon_does():
    service = unit_settings()["Service"]
    # "mixed" and "control-group" SIGKILL every worker once the main process is gone.
    assert service["KillMode"] == "process"
    assert service["KillSignal"] == "SIGTERM"
    assert service["ExecStart"].endswith("archivist daemon start --foreground")
    assert service["Restart"] == "on-failure"  # a crashed daemon comes back and adopts its workers
    # The daemon needs stop_grace to let its workers stop, plus time to queue their jobs.
    assert float(service["TimeoutStopSec"]) >= QueueConfig().stop_grace + 30
    assert service["Type"] == "simple"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path):
    text = UNIT.read_text().replace("%h/.local/bin/archivist", str(Path(sys.executable).parent / "archivist"))
    unit = tmp_path / "archivist.service"
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "archivist.service" not in result.stderr, result.stderr


def _foreground_daemon() -> subprocess.Popen:
    """``archivist daemon start --foreground`` in its own session, as systemd runs ExecStart."""
    return subprocess.Popen([sys.executable, "-m", "archivist_tui.cli", "daemon", "start", "--foreground"],
                            env=_source_root_env(dict(os.environ)), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _started(pid: int) -> bool:
    """The daemon has logged its start (its signal handlers are in place from then on)."""
    with Store() as store:
        return any(e.message.startswith(f"daemon {pid} started") for e in store.events(None, limit=20))


@pytest.mark.slow
def test_what_killmode_process_does_to_a_crash_and_to_a_stop(queue_home, tmp_path, gate, wait_for):
    with QueueClient() as q:
        jid = q.submit("selftest", {"output": str(tmp_path / "out.txt"), "steps": 6, "hold_at": [2, 4],
                                    "gate": str(gate)})
    first = _foreground_daemon()
    worker = gate.wait_held(2)

    # The daemon crashes: systemd (KillMode=process) sends nothing to anyone else.
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert psutil.pid_exists(worker) and psutil.Process(worker).status() != psutil.STATUS_ZOMBIE
    # Restart=on-failure: the next daemon adopts the worker, which carries on where it was.
    second = _foreground_daemon()
    try:
        wait_for(lambda: _started(second.pid), what="the second daemon to start")
        gate.open(2)
        assert gate.wait_held(4) == worker
        assert Store().get(jid).worker_pid == worker

        # systemctl stop: SIGTERM to the daemon alone. It stops its worker at a safe boundary,
        # queues the job to resume, and exits well within TimeoutStopSec.
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=float(unit_settings()["Service"]["TimeoutStopSec"]))
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0
    wait_for(lambda: not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE,
             what="the worker to end with the daemon")
    job = Store().get(jid)
    assert job.status == "queued" and not (tmp_path / "out.txt").exists()
