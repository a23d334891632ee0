"""Start-up of the command line and the package, as a user meets it: each command a fresh
process, wall time from start to exit, the median of ``--repeats`` runs.

    python benchmarks/cli_startup.py                      # this checkout
    python benchmarks/cli_startup.py --repo /path/to/other/checkout
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

from whole_process import timed

REPO = Path(__file__).resolve().parents[1]


def commands(robustkit: str) -> dict[str, list[str]]:
    """What is timed: the CLI's help and version, and the imports they are measured against."""
    return {
        "robustkit --help": [robustkit, "--help"],
        "robustkit --version": [robustkit, "--version"],
        "robustkit audit --help": [robustkit, "audit", "--help"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "python -c 'import torch, robustkit'": [sys.executable, "-c", "import torch, robustkit"],
        "python -c 'import torch; robustkit.audit'": [
            sys.executable,
            "-c",
            "import torch, robustkit; robustkit.audit",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout of robustkit to time")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    robustkit = shutil.which("robustkit")
    if robustkit is None:
        parser.error("install robustkit first (pip install -e .): its console script is timed")
    env = {**os.environ, "PYTHONPATH": str(args.repo.resolve())}  # that checkout's code
    for label, command in commands(robustkit).items():
        seconds = [timed(command, env=env, ok=(0,))[0] for _ in range(args.repeats)]
        print(f"{label:<44} median {statistics.median(seconds):.3f} s  (of {args.repeats})")


if __name__ == "__main__":
    main()
