"""``archivist runs``: list, show, promote, pause, stop and remove training runs."""

from __future__ import annotations

import argparse

from archivist_tui.commands._common import add_json_option, int_arg


def register(sub) -> None:
    from engine.models.library import ROLES

    p = sub.add_parser("runs", help="training runs: list, show, promote, pause, resume, stop, remove",
                       description="Training runs in ARCHIVIST_HOME/runs/.")
    rsub = p.add_subparsers(dest="runs_command", metavar="ACTION")

    q = rsub.add_parser("list", help="list the runs")
    add_json_option(q)
    q.set_defaults(func=cmd_list)

    q = rsub.add_parser("show", help="everything known about a run")
    q.add_argument("run", metavar="RUN")
    add_json_option(q)
    q.set_defaults(func=cmd_show)

    q = rsub.add_parser("promote", help="put a checkpoint's EMA weights into the model library")
    q.add_argument("run", metavar="RUN")
    q.add_argument("--iter", type=int_arg("--iter"), metavar="N", help="checkpoint iteration (default the latest)")
    q.add_argument("--name", required=True, metavar="MODEL", help="library name of the new model")
    q.add_argument("--role", choices=ROLES, default="custom", help="what the model is for (default custom)")
    q.add_argument("--force", action="store_true", help="replace a model of the same name")
    q.set_defaults(func=cmd_promote)

    for action, text in (("pause", "checkpoint and pause a running run (resume it later)"),
                         ("stop", "checkpoint and stop a running run")):
        q = rsub.add_parser(action, help=text)
        q.add_argument("run", metavar="RUN")
        q.set_defaults(func=cmd_control, action=action)

    q = rsub.add_parser("resume", help="continue a paused or stopped run through the job queue",
                        description="Continue a run from its latest checkpoint as a queued train job. A paused "
                        "job of the run is queued again (one job per run); a run whose job is queued or "
                        "running is left alone; otherwise a new train job is queued. The daemon runs it.")
    q.add_argument("run", metavar="RUN")
    q.add_argument("--priority", type=int, default=0, metavar="N",
                   help="priority of a newly queued job, higher runs first (default 0)")
    q.add_argument("--device", default="any", metavar="DEV",
                   help="any | cpu | cuda:N, the slot a newly queued job needs (default any)")
    q.set_defaults(func=cmd_resume)

    q = rsub.add_parser("remove", help="delete a run and its checkpoints")
    q.add_argument("run", metavar="RUN")
    q.set_defaults(func=cmd_remove)


def _fmt(v, spec: str = "") -> str:
    return "-" if v is None else format(v, spec)


def cmd_list(args: argparse.Namespace) -> int:
    from archivist_tui.output import print_json, print_table
    from engine.train.runs import list_runs

    items = list_runs()
    if args.json:
        print_json(items)
        return 0
    if not items:
        print("no runs yet: archivist train --init > my-run.yaml, then archivist train my-run.yaml")
        return 0
    rows = [(r["name"], r["status"], f"{r['iteration']}/{r['total_iters']}", _fmt(r["psnr"], ".2f"),
             _fmt(r["ssim"], ".4f")) for r in items]
    print_table(rows, ("RUN", "STATUS", "ITER", "PSNR", "SSIM"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from archivist_tui.output import print_json
    from engine.train.runs import run_info

    info = run_info(args.run)
    if args.json:
        print_json(info)
        return 0
    net = info["network"] or {}
    print(f"run:         {info['name']} ({info['status']})")
    print(f"path:        {info['path']}")
    print(f"iteration:   {info['iteration']} / {info['total_iters']}")
    print(f"network:     compact {net.get('num_feat')}/{net.get('num_conv')}×{net.get('scale')}")
    print(f"checkpoints: {', '.join(map(str, info['checkpoints'])) or '-'}")
    if info["degradation"]:
        print(f"degradation: {info['degradation'].get('name')} {str(info['degradation'].get('hash'))[:12]}")
    tr = info["last_train"] or {}
    if tr:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in tr.items() if k.startswith("l_"))
        print(f"last log:    iteration {tr.get('iteration')}: {losses}; {tr.get('it_per_s', 0):.2f} it/s")
    val = info["last_val"] or {}
    if val:
        print(f"validation:  iteration {val.get('iteration')}: PSNR {val['psnr']:.2f} dB, SSIM {val['ssim']:.4f}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from engine.train.runs import promote

    entry = promote(args.run, args.name, iteration=args.iter, role=args.role, force=args.force)
    print(f"promoted {args.run} iteration {entry.iterations} as {entry.name} ({entry.path})")
    return 0


def cmd_control(args: argparse.Namespace) -> int:
    from engine.train.runs import request

    request(args.run, args.action)
    print(f"asked run {args.run} to {args.action}: it checkpoints and exits at its next iteration")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from engine.queue.client import QueueClient

    with QueueClient() as client:
        job_id, what = client.resume_run(args.run, priority=args.priority, device=args.device)
    print({
        "resumed": f"run {args.run}: job #{job_id} queued again; it continues from the latest checkpoint",
        "submitted": f"run {args.run}: queued as job #{job_id}; it continues from the latest checkpoint",
        "queued": f"run {args.run}: job #{job_id} is already queued",
        "running": f"run {args.run}: job #{job_id} is already running",
    }[what])
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from engine.train.runs import remove_run

    remove_run(args.run)
    print(f"removed run {args.run}")
    return 0
