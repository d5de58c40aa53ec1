"""``archivist queue ...``: look at and steer the job queue (the daemon need not be running)."""

from __future__ import annotations

import argparse
import sys
import time

from archivist_tui.commands._common import add_json_option, job_id_arg, priority_arg

STATUS_CHOICES = ("queued", "running", "paused", "done", "failed", "cancelled")


def register(sub) -> None:
    p = sub.add_parser("queue", help="list, inspect and steer queued jobs",
                       description="The job queue lives in ARCHIVIST_HOME/queue.db. Add jobs with "
                       "'archivist restore ... --queue'; the daemon ('archivist daemon start') runs them.")
    qsub = p.add_subparsers(dest="queue_command", metavar="ACTION")

    ls = qsub.add_parser("list", help="list jobs")
    ls.add_argument("--status", choices=STATUS_CHOICES, help="only jobs with this status")
    add_json_option(ls)
    ls.set_defaults(func=run_list)

    show = qsub.add_parser("show", help="show one job with its spec and recent events")
    show.add_argument("id", type=job_id_arg, metavar="ID")
    add_json_option(show)
    show.set_defaults(func=run_show)

    lg = qsub.add_parser("log", help="print a job's log")
    lg.add_argument("id", type=job_id_arg, metavar="ID")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing until the job stops running")
    lg.set_defaults(func=run_log)

    for name, helptext in (("cancel", "cancel a job (a running job stops; what the job created is removed, nothing else)"),
                           ("retry", "queue a failed or cancelled job again"),
                           ("remove", "delete a job that is not running, with its log")):
        c = qsub.add_parser(name, help=helptext)
        c.add_argument("id", type=job_id_arg, metavar="ID")
        c.set_defaults(func=run_simple, action=name)

    for name, helptext in (("pause", "pause a job (a running job stops at a safe boundary and frees its device)"),
                           ("resume", "queue a paused job again")):
        c = qsub.add_parser(name, help=helptext)
        target = c.add_mutually_exclusive_group(required=True)
        target.add_argument("id", type=job_id_arg, nargs="?", metavar="ID")
        target.add_argument("--all", action="store_true", help=f"{name} every job that can be")
        c.set_defaults(func=run_pause_resume, action=name)

    pr = qsub.add_parser("priority", help="change a job's priority (higher runs first)")
    pr.add_argument("id", type=job_id_arg, metavar="ID")
    pr.add_argument("priority", type=priority_arg, metavar="N")
    pr.set_defaults(func=run_priority)

    cl = qsub.add_parser("clear", help="remove finished jobs")
    cl.add_argument("--done", action="store_true", required=True, help="remove every done job")
    cl.set_defaults(func=run_clear)


def _client(read_only: bool = False):
    """The queue's client; ``read_only`` for commands that only look, so that they still work where
    the database can be read but not written (a full disk, a read-only mount)."""
    from engine.queue.client import QueueClient
    from engine.queue.store import Store

    return QueueClient(Store(read_only_fallback=True)) if read_only else QueueClient()


def _progress(job) -> str:
    if job.total:
        return f"{job.done or 0:g}/{job.total:g} ({100 * (job.done or 0) / job.total:.0f}%)"
    return ""


def _percent_only(progress: str) -> str:
    """``8500/10411 (82%)`` as ``82%``: the progress column narrowed."""
    return progress.rsplit("(", 1)[-1].rstrip(")") if progress.endswith("%)") else progress


def _eta(job) -> str:
    if job.status != "running" or job.eta is None:
        return ""
    secs = int(job.eta)
    return f"{secs // 3600}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


def run_list(args: argparse.Namespace) -> int:
    from archivist_tui.output import print_table

    with _client(read_only=True) as client:
        if args.json:  # straight from the store's rows: 10,000 jobs in well under half a second
            lines = client.store.jobs_json(args.status)
            sys.stdout.write("[\n" + ",\n".join("  " + line for line in lines) + "\n]\n" if lines else "[]\n")
            return 0
        jobs = client.list_jobs(args.status)
    rows = []
    for j in jobs:
        rows.append([j.id, j.kind, j.shown_status, j.priority, j.slot or j.device, _progress(j),
                     f"{j.rate:.2f}/s" if j.rate and j.status == "running" else "", _eta(j),
                     f"#{j.after_id}" if j.after_id else "", j.output or ""])
    # A long output name gives way (its start), never the status columns. On a narrow terminal
    # (80 columns and less) the lesser columns go first, least telling first; the whole record
    # stays in `queue show` and `--json`.
    print_table(rows, ["ID", "KIND", "STATUS", "PRI", "DEVICE", "PROGRESS", "RATE", "ETA", "AFTER", "OUTPUT"],
                fit="OUTPUT", give_way=[("AFTER", None), ("PRI", None), ("RATE", None),
                                        ("PROGRESS", _percent_only), ("DEVICE", None), ("ETA", None)])
    return 0


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def run_show(args: argparse.Namespace) -> int:
    import json

    from archivist_tui.output import print_json, shown

    with _client(read_only=True) as client:
        job = client.get(args.id)
        events = client.events(args.id, limit=20)
    if args.json:
        data = job.to_dict()
        data["events"] = [{"time": e.time, "source": e.source, "message": e.message} for e in events]
        print_json(data)
        return 0
    print(f"job #{job.id}  {job.kind}  {job.status}" + (f" ({job.request} requested)" if job.request else ""))
    fields = [("priority", job.priority), ("device", job.device), ("slot", job.slot),
              ("progress", _progress(job) or "-"), ("rate", f"{job.rate:.2f}/s" if job.rate else "-"),
              ("eta", _eta(job) or "-"), ("attempts", job.attempts), ("after", f"#{job.after_id}" if job.after_id else "-"),
              ("created", _when(job.created_at)), ("started", _when(job.started_at)),
              ("finished", _when(job.finished_at)), ("heartbeat", _when(job.heartbeat)),
              ("worker", job.worker_pid or "-"), ("output", job.output or "-"), ("log", job.log_path),
              ("error", job.error or "-")]
    for name, value in fields:
        print(f"  {name:10} {shown(value) if value is not None else '-'}")  # a name holding a newline stays one line
    print("  spec:")
    for line in json.dumps(job.spec, indent=2, sort_keys=True, ensure_ascii=False).splitlines():
        print("    " + shown(line))
    if events:
        print("  events:")
        for e in events:
            print(f"    {_when(e.time)}  {e.source:6}  {shown(e.message)}")
    return 0


def run_log(args: argparse.Namespace) -> int:
    from engine.errors import ArchivistError

    with _client(read_only=True) as client:
        path = client.log_path(args.id)
        offset = 0
        while True:
            if path.exists():
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
                offset += len(data)
                sys.stdout.write(data.decode("utf-8", errors="replace"))
                sys.stdout.flush()
            elif not args.follow:
                raise ArchivistError(f"job #{args.id} has no log yet ({path}): it has not started")
            if not args.follow:
                return 0
            if client.get(args.id).status not in ("queued", "running"):
                if not path.exists() or path.stat().st_size == offset:
                    return 0
                continue
            time.sleep(0.25)


def run_simple(args: argparse.Namespace) -> int:
    with _client() as client:
        if args.action == "cancel":
            status = client.cancel(args.id)
            print(f"job #{args.id} cancelled" if status == "cancelled"
                  else f"job #{args.id}: cancel requested; the worker stops at its next safe boundary")
        elif args.action == "retry":
            client.retry(args.id)
            print(f"job #{args.id} queued again")
        else:
            client.remove(args.id)
            print(f"job #{args.id} removed")
    return 0


def run_pause_resume(args: argparse.Namespace) -> int:
    with _client() as client:
        if args.all:
            ids = client.pause_all() if args.action == "pause" else client.resume_all()
            print(f"{args.action}d {len(ids)} job(s)" + (": " + " ".join(f"#{i}" for i in ids) if ids else ""))
            return 0
        if args.action == "pause":
            status = client.pause(args.id)
            print(f"job #{args.id} paused" if status == "paused"
                  else f"job #{args.id}: pause requested; the worker stops at its next safe boundary")
        else:
            status = client.resume(args.id)
            print(f"job #{args.id} {status}")
    return 0


def run_priority(args: argparse.Namespace) -> int:
    with _client() as client:
        client.set_priority(args.id, args.priority)
    print(f"job #{args.id} priority {args.priority}")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    with _client() as client:
        removed = client.clear_done()
    print(f"removed {len(removed)} done job(s)")
    return 0
