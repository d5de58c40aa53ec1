"""``--queue`` and its companions, shared by every command that can run as a queued job.

A command adds them with :func:`add_queue_options`; when ``args.queue`` is set its handler builds a
job spec (plain data) and calls :func:`submit_from_args`, which queues it and prints the job id.
``--device`` is reused: commands that run a network already have it (``auto|cpu|cuda:N``); with
``--queue`` it names the slot the job asks for (``auto`` or ``any``: any slot).
"""

from __future__ import annotations

import argparse

from archivist_tui.commands._common import job_id_arg, priority_arg


def add_queue_options(parser: argparse.ArgumentParser) -> None:
    """``--queue``, ``--priority N``, ``--after ID`` and, when the command has none, ``--device``.

    Call it after :func:`add_device_options` so an existing ``--device`` is reused, not duplicated.
    """
    group = parser.add_argument_group("queue", "add the work to the job queue instead of running it now")
    group.add_argument("--queue", action="store_true",
                       help="queue the job for the daemon and print its id (the daemon need not be running)")
    group.add_argument("--priority", type=priority_arg, default=0, metavar="N",
                       help="higher runs first (default 0)")
    group.add_argument("--after", type=job_id_arg, default=None, metavar="ID",
                       help="hold the job until job ID has finished successfully")
    if not any("--device" in a.option_strings for a in parser._actions):
        group.add_argument("--device", default="any", metavar="DEV",
                           help="with --queue: any | cpu | cuda:N, the slot the job needs (default any)")


def submit_from_args(args: argparse.Namespace, kind: str, spec: dict) -> int:
    """Queue ``spec`` as a ``kind`` job with the queue options of ``args`` and print its id.

    Returns the exit code (0), so a handler can ``return submit_from_args(args, "degrade", spec)``.
    The spec is validated by the kind (paths made absolute, unknown keys refused) before it is stored.
    """
    from engine.queue.client import QueueClient

    with QueueClient() as client:
        job_id = client.submit(kind, spec, priority=args.priority, device=getattr(args, "device", "any") or "any",
                               after=args.after)
    print(job_id)
    return 0
