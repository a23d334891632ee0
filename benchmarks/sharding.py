"""One audit in one process against the same audit sharded over N processes by torchrun (gloo on
the CPU): wall time of each whole command from a fresh process, and whether results.csv and
summary.csv come out byte-identical.

The single process runs once with one torch thread and once with all the cores as threads;
torchrun gives each of its N processes cores / N threads (its OMP_NUM_THREADS).

    python benchmarks/sharding.py --processes 2 --num-samples 500 --batch-size 50
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from whole_process import timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--num-samples", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--attacks", default="pgd-linf")
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    audit = [
        "-m", "robustkit", "audit", "--attacks", args.attacks, "--steps", str(args.steps),
        "--num-samples", str(args.num_samples), "--batch-size", str(args.batch_size),
        "--no-noise-probes",
    ]  # fmt: skip
    torchrun = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(args.processes),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp, "one"), Path(tmp, "many")
        single = {}
        for threads in sorted({1, cores}):
            os.environ["OMP_NUM_THREADS"] = str(threads)
            single[threads], _ = timed([sys.executable, *audit, "--out", str(one)])
        os.environ["OMP_NUM_THREADS"] = str(max(cores // args.processes, 1))
        many_seconds, _ = timed([*torchrun, *audit, "--out", str(many)])
        same = all(
            (one / name).read_bytes() == (many / name).read_bytes()
            for name in ("results.csv", "summary.csv")
        )
    print(f"| processes | wall time |  ({args.attacks} x {args.steps} steps, {args.num_samples}")
    print(f"| ---: | ---: |  images in batches of {args.batch_size}, {cores} cores)")
    for threads, seconds in single.items():
        print(f"| 1 ({threads} thread{'s' * (threads > 1)}) | {seconds:.1f} s |")
    print(f"| {args.processes} (torchrun, gloo) | {many_seconds:.1f} s |")
    print(f"speed-up over the best single process {min(single.values()) / many_seconds:.2f}x")
    print(f"results.csv and summary.csv identical: {same}")


if __name__ == "__main__":
    main()
