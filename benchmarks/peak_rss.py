"""Peak memory of a whole `robustkit audit` against the number of images: rows stream to disk per
batch, so 10,000 MNIST test images should need little more than 1,000 (goal: within 1.3x).

Each size is a fresh process; its peak resident set size comes from the kernel's accounting of
that child (``os.wait4``), wall time from start to exit.

    python benchmarks/peak_rss.py --data-root $ROBUSTKIT_DATA --sizes 1000,10000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def audit_peak_rss(data_root: str, num_samples: int, attacks: str) -> tuple[float, float]:
    """One audit of ``num_samples`` MNIST test images in a fresh process: (peak RSS in MiB,
    wall seconds). Fails loudly."""
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable, "-m", "robustkit", "audit", "--dataset", "mnist", "--data-root",
            data_root, "--attacks", attacks, "--no-noise-probes", "--num-samples",
            str(num_samples), "--out", out,
        ]  # fmt: skip
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            error = child.stderr.read().decode() if child.stderr else ""
            sys.exit(f"{' '.join(command)} failed:\n{error[-2000:]}")
    return usage.ru_maxrss / 1024, seconds  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("ROBUSTKIT_DATA"))
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--attacks", default="fgsm")
    args = parser.parse_args()
    if not args.data_root:
        parser.error("give --data-root or set ROBUSTKIT_DATA (MNIST raw files)")
    sizes = [int(size) for size in args.sizes.split(",")]
    peaks = {}
    print(f"| images | peak RSS | wall time |  ({args.attacks}, batch 500, no noise probes)")
    print("| ---: | ---: | ---: |")
    for size in sizes:
        peaks[size], seconds = audit_peak_rss(args.data_root, size, args.attacks)
        print(f"| {size:,} | {peaks[size]:.0f} MiB | {seconds:.1f} s |", flush=True)
    print(f"ratio {sizes[-1]:,} / {sizes[0]:,}: {peaks[sizes[-1]] / peaks[sizes[0]]:.2f}x")


if __name__ == "__main__":
    main()
