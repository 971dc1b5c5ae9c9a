"""The ``--distributed`` flags every training command line shares (no MLX import: ``--help`` stays quick)."""

from __future__ import annotations

import argparse

DISTRIBUTED_TIMEOUT = 1800.0  # seconds a rank waits at a collective: above the slowest turn + held-out eval of an 8B model


def add_distributed_arguments(parser: argparse.ArgumentParser, share: str) -> None:
    """``--distributed`` (``share``: what each rank takes) and ``--distributed-timeout``."""
    parser.add_argument("--distributed", action="store_true",
                        help=f"join the ranks mlx.launch started: each {share}; gradients pooled with all_sum; "
                             f"rank 0 writes --out (README: Several Macs)")
    parser.add_argument("--distributed-timeout", type=float, default=None,
                        help=f"seconds a rank waits for the others at a step before giving up (default: {DISTRIBUTED_TIMEOUT:.0f})")
