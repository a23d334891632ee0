"""What an eps sweep costs with nested budgets against separate audits per eps: one
`robustkit audit --eps 0.2,0.3,0.4` against three audits of one eps each, the same model, images and
suite, each a whole process; the worst case must be identical and monotone.

    python benchmarks/nested_budgets.py --data-root $ROBUSTKIT_DATA --num-samples 500
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from whole_process import timed, worst_case


def audit(args: argparse.Namespace, eps: list[float], out: str) -> float:
    """Wall time of one audit over ``eps``."""
    seconds, _ = timed(
        [
            "robustkit", "audit", "--model", args.model, "--dataset", "mnist",
            "--data-root", args.data_root, "--num-samples", str(args.num_samples),
            "--eps", ",".join(map(str, eps)), "--suite", args.suite, "--attacks", "",
            "--no-noise-probes", "--out", out,
        ]
    )  # fmt: skip
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("ROBUSTKIT_DATA"))
    parser.add_argument("--model", default="zoo:mnist-robust")
    parser.add_argument("--eps", default="0.2,0.3,0.4")
    parser.add_argument("--suite", default="standard")
    parser.add_argument("--num-samples", type=int, default=500)
    args = parser.parse_args()
    if not args.data_root:
        parser.error("give --data-root or set ROBUSTKIT_DATA (MNIST raw files)")
    budgets = [float(e) for e in args.eps.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        sweep_s = audit(args, budgets, f"{tmp}/sweep")
        sweep = [worst_case(Path(f"{tmp}/sweep"), eps) for eps in budgets]
        separate_s, separate = 0.0, []
        for eps in budgets:
            separate_s += audit(args, [eps], f"{tmp}/{eps}")
            separate.append(worst_case(Path(f"{tmp}/{eps}"), eps))
    print("| eps | nested sweep | separate audits |")
    print("| --- | --- | --- |")
    for eps, ours, alone in zip(budgets, sweep, separate, strict=True):
        print(f"| {eps:g} | {ours:.1%} | {alone:.1%} |")
    print(f"| wall time | {sweep_s:.0f} s | {separate_s:.0f} s ({sweep_s / separate_s:.2f}x) |")


if __name__ == "__main__":
    main()
