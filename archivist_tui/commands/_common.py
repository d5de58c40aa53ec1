"""Options shared by several commands."""

from __future__ import annotations

import argparse

from engine.devices import PRECISIONS


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
