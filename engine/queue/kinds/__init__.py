"""Job kinds: what a queued job does. One small registry; each kind is four plain functions.

- ``validate(spec) -> spec``: check and normalise the JSON spec when the job is submitted (cheap:
  no torch); raises :class:`ArchivistError` naming the key. The built-in kinds declare their spec
  as a document (:mod:`engine.document`), so a refusal is an ``InvalidValue`` naming the spec's key
  (``tile``), which the command line shows as its flag (``--tile``).
- ``run(spec, ctx) -> bool``: do the work in the worker process; True when complete, False when it
  stopped early at a safe boundary because ``ctx.should_stop()`` said so. It must resume: a second
  run after a crash or a pause continues where the first stopped and never redoes finished units.
- ``cleanup(spec, work_dir)``: after a cancel, remove what the job created and nothing else: the
  files its ledger (``work_dir/owned.jsonl``, :mod:`engine.ownership`) lists. A job that never
  ran has no ledger, so its cancel removes nothing.
- ``output(spec) -> str | None``: the output path, for listings and the end-of-job hook.

One module per kind (:mod:`.restore`, :mod:`.degrade`, :mod:`.train`) and one for what they share
(:mod:`.common`). The spec is data, never a command line: nothing here runs a shell.
"""

from __future__ import annotations

import os

from engine.errors import ArchivistError
from engine.queue.kinds.common import JobContext, JobKind
from engine.queue.kinds.degrade import DEGRADE
from engine.queue.kinds.restore import RESTORE
from engine.queue.kinds.train import TRAIN

__all__ = ["DEGRADE", "RESTORE", "TEST_KINDS_ENV", "TRAIN", "JobContext", "JobKind", "get_kind", "kinds"]

TEST_KINDS_ENV = "ARCHIVIST_TEST_KINDS"


def kinds() -> dict[str, JobKind]:
    """The registered kinds: the built-in ones, plus those of the modules named in ``ARCHIVIST_TEST_KINDS``.

    ``ARCHIVIST_TEST_KINDS`` is a comma-separated list of importable module names, each with a
    ``KINDS`` sequence of :class:`JobKind`. The tests use it to give the daemon and its workers
    (separate processes, which inherit the variable) job kinds whose speed the test controls.
    A test kind cannot replace a built-in one.
    """
    registry = {k.name: k for k in (RESTORE, DEGRADE, TRAIN)}
    for module_name in filter(None, (m.strip() for m in os.environ.get(TEST_KINDS_ENV, "").split(","))):
        for kind in _kinds_of_module(module_name):
            if kind.name in registry:
                raise ArchivistError(f"{TEST_KINDS_ENV}: module {module_name!r} defines kind {kind.name!r}, "
                                     "which is already registered")
            registry[kind.name] = kind
    return registry


def _kinds_of_module(module_name: str) -> tuple[JobKind, ...]:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ArchivistError(f"{TEST_KINDS_ENV}: cannot import module {module_name!r}: {exc}") from None
    found = getattr(module, "KINDS", None)
    if found is None or not all(isinstance(k, JobKind) for k in found):
        raise ArchivistError(f"{TEST_KINDS_ENV}: module {module_name!r} has no KINDS sequence of JobKind")
    return tuple(found)


def get_kind(name: str) -> JobKind:
    """The kind called ``name``, or an error naming the kinds there are."""
    registry = kinds()
    if name not in registry:
        raise ArchivistError(f"unknown job kind {name!r}: allowed are {', '.join(sorted(registry))}")
    return registry[name]
