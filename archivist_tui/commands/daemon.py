"""``archivist daemon start [--foreground] | stop | status [--json]``: the job-queue daemon."""

from __future__ import annotations

import argparse
import sys

from archivist_tui.commands._common import add_json_option


def register(sub) -> None:
    p = sub.add_parser("daemon", help="start, stop or inspect the job-queue daemon",
                       description="The daemon runs queued jobs, one worker process per job, and survives "
                       "closed terminals. Its guide, with running it under systemd, ships with Archivist: "
                       "'archivist docs daemon' prints it ('archivist docs archivist.service --path' gives the "
                       "unit file).")
    dsub = p.add_subparsers(dest="daemon_command", metavar="ACTION")
    start = dsub.add_parser("start", help="start the daemon (detached unless --foreground)",
                            description="Start the daemon. It detaches from the terminal and logs to "
                            "ARCHIVIST_HOME/daemon.log; a second start is refused while one runs.")
    start.add_argument("--foreground", action="store_true",
                       help="stay attached and log to stderr (for systemd and containers)")
    start.set_defaults(func=run_start)
    stop = dsub.add_parser("stop", help="stop the daemon; running jobs stop at a safe boundary and resume later",
                           description="Stop the daemon. Running jobs stop at a safe boundary and are "
                           "queued again, so the next start resumes them.")
    stop.set_defaults(func=run_stop)
    status = dsub.add_parser("status", help="is the daemon running, where are its files, what is queued")
    add_json_option(status)
    status.set_defaults(func=run_status)


def run_start(args: argparse.Namespace) -> int:
    if args.foreground:
        import logging

        from engine.queue.daemon import run_daemon

        logging.getLogger().setLevel(logging.INFO)  # the journal keeps the daemon's log
        return run_daemon()
    from engine.queue.daemon import daemon_log_path, start_daemon

    pid = start_daemon()
    print(f"daemon started (pid {pid}); log: {daemon_log_path()}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    from engine.queue.daemon import stop_daemon

    pid = stop_daemon()
    if pid is None:
        print("daemon is not running", file=sys.stderr)
    else:
        print(f"daemon stopped (pid {pid})")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from archivist_tui.output import print_json
    from engine.queue.daemon import daemon_status

    st = daemon_status()
    if args.json:
        print_json(st.to_dict())
        return 0
    if st.running:
        state = f"running (pid {st.pid or '?'})"
        if not st.pid_file_present:
            state += f"; {st.pid_file} was missing, the daemon writes it again within one poll"
    else:
        state = "not running"
    print(f"daemon:   {state}")
    print(f"slots:    {', '.join(st.slots) or '-'}")
    print(f"jobs:     {', '.join(f'{n} {s}' for s, n in sorted(st.jobs.items())) or 'none'}")
    print(f"database: {st.database}")
    print(f"log:      {st.log}")
    return 0
