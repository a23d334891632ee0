"""A user's whole PGD audit against a plain torchattacks script doing the same job: start-up,
MNIST test data, PGD-40 at L-inf eps 0.3 on the same images; ours also runs its model probes, the
noise probes and writes the report. Each is a fresh process; wall time from start to exit.

    python benchmarks/pgd_whole_process.py --data-root $ROBUSTKIT_DATA --num-samples 500
    python benchmarks/pgd_whole_process.py --repo /path/to/other/checkout   # another version
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from whole_process import python_json, timed, worst_case

REPO = Path(__file__).resolve().parents[1]

TORCHATTACKS = """
import json, sys, torch, torchattacks
from torchvision import datasets, transforms
from robustkit.models import load_model
root, n, eps, steps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
model = load_model("zoo:mnist-cnn", device="cpu")
test = datasets.MNIST(root, train=False, transform=transforms.ToTensor())
order = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))  # robustkit's subset
subset = torch.utils.data.Subset(test, order[:n].tolist())
x, y = next(iter(torch.utils.data.DataLoader(subset, batch_size=n)))
alpha = max(2.5 / steps, 0.1) * eps  # robustkit's default step rule, for the same attack
attack = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
adv = attack(x, y)
with torch.no_grad():
    print(json.dumps({"robust_accuracy": float((model(adv).argmax(1) == y).float().mean())}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("ROBUSTKIT_DATA"))
    parser.add_argument("--num-samples", type=int, default=500)
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout of robustkit to time")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.repo.resolve())}  # that checkout's code
    if not args.data_root:
        parser.error("give --data-root or set ROBUSTKIT_DATA (MNIST raw files)")
    ours_times, theirs_times = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            seconds, _ = timed(
                [
                    "robustkit", "audit", "--attacks", "pgd-linf", "--eps", str(args.eps),
                    "--steps", str(args.steps), "--dataset", "mnist", "--data-root",
                    args.data_root, "--num-samples", str(args.num_samples), "--out", out,
                ],
                env=env,
            )  # fmt: skip
            ours_times.append(seconds)
            ours = worst_case(Path(out), args.eps)
        seconds, theirs = python_json(
            TORCHATTACKS,
            args.data_root,
            str(args.num_samples),
            str(args.eps),
            str(args.steps),
            env=env,
        )
        theirs_times.append(seconds)
    ours_s, theirs_s = min(ours_times), min(theirs_times)
    print("| tool | robust accuracy | wall time (best of runs) |")
    print("| --- | --- | --- |")
    print(f"| robustkit audit (report, probes included) | {ours:.1%} | {ours_s:.1f} s |")
    print(f"| plain torchattacks script | {theirs['robust_accuracy']:.1%} | {theirs_s:.1f} s |")
    print(f"| ratio | | {ours_s / theirs_s:.2f}x |")


if __name__ == "__main__":
    main()
