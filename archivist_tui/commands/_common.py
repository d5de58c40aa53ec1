"""Options shared by several commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from engine.devices import PRECISIONS
from engine.document import describe_range


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--precision``, the same on every command that runs a network."""
    parser.add_argument(
        "--device",
        default="auto",
        metavar="DEV",
        help="auto | cpu | cuda | cuda:N (default auto: the first CUDA GPU, else the CPU)",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: fp16 or bf16 on CUDA, fp32 on CPU (default auto)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


# SQLite's INTEGER and most C APIs stop at 64 bits: an integer option is bounded before it travels.
INT64_MAX = 2**63 - 1


def int_arg(name: str, lo: int = -INT64_MAX, hi: int = INT64_MAX) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number in ``[lo, hi]`` whose error names the bounds."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            shown = describe_range(lo if lo > -INT64_MAX else None, hi if hi < INT64_MAX else None, integer=True)
            raise argparse.ArgumentTypeError(f"{text} out of range: allowed {shown}")
        return value

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def float_arg(name: str, lo: float, hi: float) -> Callable[[str], float]:
    """An argparse ``type`` for a finite number in ``[lo, hi]`` whose error names the bounds."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not lo <= value <= hi:  # NaN fails this too
            raise argparse.ArgumentTypeError(f"{text} out of range: allowed {describe_range(lo, hi)}")
        return value

    parse.__name__ = name
    return parse


def tiling_arg(flag: str, key: str) -> Callable[[str], int]:
    """An argparse ``type`` for ``--tile``/``--tile-overlap``: the chain's own rule
    (:func:`engine.inference.chain.tiling_problem`), its error naming the flag."""
    whole = int_arg(flag)

    def parse(text: str) -> int:
        value = whole(text)
        from engine.inference.chain import tiling_problem

        problem = tiling_problem(key, value)
        if problem:
            raise argparse.ArgumentTypeError(f"{value} invalid: {problem}")
        return value

    parse.__name__ = flag
    return parse


PRIORITY_LIMIT = 1_000_000
# Shared types: a job id (a SQLite row id) and a queue priority.
job_id_arg = int_arg("ID")
priority_arg = int_arg("N", -PRIORITY_LIMIT, PRIORITY_LIMIT)
