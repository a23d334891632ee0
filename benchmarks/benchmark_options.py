"""Command-line options several benchmarks share (imported as a sibling module, like
``whole_process``)."""

from __future__ import annotations

import argparse

import torch


def add_threads(parser: argparse.ArgumentParser, default: int | None = None) -> None:
    """``--threads N``: torch's CPU threads (default: torch's own choice)."""
    parser.add_argument("--threads", type=int, default=default, help="torch CPU threads")


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's thread count when ``--threads`` was given."""
    if args.threads:
        torch.set_num_threads(args.threads)


def add_defense_audit(parser: argparse.ArgumentParser) -> None:
    """The budget, attack and projection settings of a manifold-defense audit."""
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--attack-steps", type=int, default=20)
    parser.add_argument("--latent-steps", type=int, default=40)
    parser.add_argument("--proj-steps", type=int, default=30)
    parser.add_argument("--proj-restarts", type=int, default=2)
    parser.add_argument("--proj-lr", type=float, default=0.2)
    parser.add_argument("--eot-samples", type=int, default=4)
