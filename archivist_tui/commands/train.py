"""``archivist train``: train or resume a Compact network from a YAML config."""

from __future__ import annotations

import argparse

from archivist_tui.commands._common import add_device_options, int_arg


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train a Compact network on synthetic damage (or print a starting config)",
        description="Train (or resume) a run from a YAML config; the run lives in ARCHIVIST_HOME/runs/<name>/. "
                    "Ctrl-C (or SIGTERM, or 'archivist runs pause|stop RUN') checkpoints and exits; "
                    "continue with --resume.")
    p.add_argument("config", nargs="?", metavar="CONFIG.yaml",
                   help="the training config (optional with --resume --name RUN: the run's own)")
    p.add_argument("--init", action="store_true", help="print a documented starting config and exit")
    p.add_argument("--name", metavar="RUN", help="run name (default: the config's name)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run from its latest checkpoint (only train.total_iters, the intervals, "
                        "train.keep_checkpoints, device and data.workers may change)")
    p.add_argument("--stop-at", type=int_arg("--stop-at"), metavar="N",
                   help="checkpoint and stop at iteration N without changing the schedule")
    add_device_options(p)
    for action in p._actions:  # the config decides unless given on the command line
        if action.dest in ("device", "precision"):
            action.default = None
            action.help = action.help.replace("(default auto", "(default: the config's value, auto")
    from archivist_tui.commands._queue_opts import add_queue_options

    add_queue_options(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from engine.errors import UsageError

    if args.init:
        from engine.train.config import init_template

        print(init_template(), end="")
        return 0
    if not args.config and not (args.resume and args.name):
        raise UsageError("train needs CONFIG.yaml (or --resume --name RUN, or --init to print a starting config)")
    if getattr(args, "queue", False):
        from pathlib import Path

        from archivist_tui.commands._queue_opts import submit_from_args

        spec = {"config": str(Path(args.config).resolve()) if args.config else None, "name": args.name,
                "resume": bool(args.resume), "stop_at": args.stop_at, "precision": args.precision}
        return submit_from_args(args, "train", spec)

    import os

    from archivist_tui.output import Progress
    from engine.train import run_training

    with Progress("train", "it") as progress:
        result = run_training(args.config, name=args.name, resume=args.resume, stop_at=args.stop_at,
                              progress=progress, device=args.device, precision=args.precision)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks
        return 0
    messages = {
        "done": f"run {result.run}: finished at iteration {result.iteration}",
        "stop_at": f"run {result.run}: stopped at iteration {result.iteration} (--stop-at); continue with --resume",
        "paused": f"run {result.run}: paused at iteration {result.iteration}; continue with --resume",
        "stopped": f"run {result.run}: stopped at iteration {result.iteration}; continue with --resume",
        "interrupted": f"run {result.run}: interrupted at iteration {result.iteration}, checkpoint saved; "
                       "continue with --resume",
    }
    print(messages.get(result.status, f"run {result.run}: {result.status}"))
    if result.checkpoint is not None:
        print(f"checkpoint: {result.checkpoint}")
    return 0
