"""engine.atomic.atomic_write: a file is written whole or not at all, errors are one line, and the
writers that used to rename by hand keep that promise on a really full disk."""

from __future__ import annotations

import errno
import os
import pickle
import re
from pathlib import Path

import pytest

from engine.atomic import WriteFailed, atomic_write
from engine.errors import ArchivistError
from tests.disks import fill, tmpfs


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_file_is_replaced_whole_through_a_hidden_name_beside_it(tmp_path):
    target = tmp_path / "deep" / "er" / "state.json"  # missing folders are made
    seen = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_text("new")

    atomic_write(target, write)
    assert target.read_text() == "new" and _listing(target.parent) == ["state.json"]
    (tmp,) = seen
    assert tmp.parent == target.parent and re.fullmatch(rf"\.state\.json\.{os.getpid()}\.[0-9a-f]{{8}}\.part", tmp.name)
    old_umask = os.umask(0o022)
    try:
        atomic_write(target, lambda t: t.write_text("newer"))
    finally:
        os.umask(old_umask)
    assert target.read_text() == "newer" and (target.stat().st_mode & 0o777) == 0o644


def test_a_failing_writer_leaves_the_old_file_and_nothing_else(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")

    def half(tmp: Path) -> None:
        tmp.write_bytes(b"half of it")
        raise RuntimeError("the writer broke")

    with pytest.raises(RuntimeError, match="the writer broke"):
        atomic_write(target, half)
    assert target.read_bytes() == b"old" and _listing(tmp_path) == ["model.bin"]


def test_os_errors_are_one_line_naming_the_file_not_the_temporary_one(tmp_path):
    target = tmp_path / "missing" / "run.json"
    with pytest.raises(WriteFailed) as err:
        atomic_write(target, lambda t: t.write_text("x"), parents=False)
    assert str(err.value) == f"{target}: no such file or folder" and err.value.errno == errno.ENOENT
    assert isinstance(err.value, ArchivistError) and not (tmp_path / "missing").exists()
    again = pickle.loads(pickle.dumps(err.value))  # as a worker process sends it back
    assert str(again) == str(err.value) and again.errno == errno.ENOENT


def test_a_given_temporary_name_is_used_and_removed_on_failure(tmp_path):
    target = tmp_path / "pair.png"
    temp = tmp_path / ".pair.png.archivist-job7.part"  # engine.ownership's tagged name
    seen = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_bytes(b"png")

    atomic_write(target, write, temp=temp, parents=False)
    assert seen == [temp] and target.read_bytes() == b"png" and _listing(tmp_path) == ["pair.png"]

    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(errno.EIO, "Input/output error", str(tmp))

    with pytest.raises(WriteFailed, match=rf"^{re.escape(str(target))}: Input/output error$"):
        atomic_write(target, broken, temp=temp)
    assert target.read_bytes() == b"png" and _listing(tmp_path) == ["pair.png"]
    with pytest.raises(ValueError, match="must lie beside"):
        atomic_write(target, write, temp=tmp_path / "elsewhere" / ".pair.png.part")


def test_fsync_flushes_the_temporary_file_before_the_rename(tmp_path, monkeypatch):
    """Watched, not replaced: the real fsync runs; what it was given is noted."""
    import engine.atomic

    synced = []
    real = os.fsync

    def watch(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(engine.atomic.os, "fsync", watch)
    target = tmp_path / "run.json"
    atomic_write(target, lambda t: t.write_text("{}"))
    assert synced == []  # bulk writes are not synced
    atomic_write(target, lambda t: t.write_text("{}"), fsync=True)
    (name,) = synced
    assert Path(name).parent == tmp_path and Path(name).name.startswith(".run.json.")  # before the rename
    assert target.read_text() == "{}"


# -- the writers that renamed by hand, on a full disk ------------------------------------------------
@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs of the test's own, filled to the last byte (mounting needs root, as in CI)."""
    with tmpfs(tmp_path / "disk", "1m") as mount:
        (mount / "home").mkdir()
        (mount / "frames").mkdir()
        fill(mount)
        yield mount


def test_writers_on_a_full_disk_fail_in_one_line_and_leave_nothing(full_disk, monkeypatch, capsys):
    from engine.degrade.library import new_profile
    from engine.synth.frames import main as frames_main

    monkeypatch.setenv("ARCHIVIST_HOME", str(full_disk / "home"))
    profiles = full_disk / "home" / "profiles"
    profiles.mkdir()
    with pytest.raises(WriteFailed) as err:
        new_profile("mine", "normal")
    assert str(err.value) == f"{profiles / 'mine.yaml'}: no space left on the device: free some space, then run it again"
    assert _listing(profiles) == []

    frames = full_disk / "frames"
    assert frames_main([str(frames), "--count", "1", "--size", "64"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"archivist: error: {frames / 'cel_00000.png'}: no space left on the device: "
                     "free some space, then run it again"]
    assert _listing(frames) == []
