"""Our `standard` suite against torchattacks' AutoAttack(version="standard"): the same model, the
same MNIST test images, L-inf eps 0.3, each tool run as a whole process; robust accuracy (ours must
be no higher) and wall time (ours at most 0.5x).

    python benchmarks/vs_autoattack.py --data-root $ROBUSTKIT_DATA --num-samples 1000 \\
        --models zoo:mnist-robust,zoo:mnist-cnn [--same-allocator]

``--same-allocator`` also times AutoAttack under the glibc malloc thresholds that the robustkit
command sets for itself (robustkit.cpu_memory), through the environment: how much of the gap is
the allocator and how much the attacks.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from whole_process import python_json, timed, worst_case

from robustkit.cpu_memory import MMAP_THRESHOLD, TRIM_THRESHOLD

AUTOATTACK = """
import json, sys, torch, torchattacks
from robustkit.data import load_dataset
from robustkit.models import load_model
spec, root, n, eps = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
model = load_model(spec, device="cpu")
info = load_dataset("mnist", root=root, num_samples=n, seed=0)
loader = torch.utils.data.DataLoader(info.dataset, batch_size=500, shuffle=False)
attack = torchattacks.AutoAttack(
    model, norm="Linf", eps=eps, version="standard", n_classes=10, seed=0
)
robust = total = 0
for x, y in loader:
    adv = attack(x, y)
    with torch.no_grad():
        robust += int((model(adv).argmax(1) == y).sum())
    total += len(y)
print(json.dumps({"robust_accuracy": robust / total, "n": total}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("ROBUSTKIT_DATA"))
    parser.add_argument("--models", default="zoo:mnist-robust,zoo:mnist-cnn")
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--same-allocator", action="store_true")
    args = parser.parse_args()
    if not args.data_root:
        parser.error("give --data-root or set ROBUSTKIT_DATA (MNIST raw files)")
    print("| model | tool | robust accuracy | wall time (s) |")
    print("| --- | --- | --- | --- |")
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as out:
            ours_s, _ = timed(
                [
                    "robustkit", "audit", "--model", model, "--dataset", "mnist",
                    "--data-root", args.data_root, "--num-samples", str(args.num_samples),
                    "--eps", str(args.eps), "--suite", "standard", "--attacks", "",
                    "--no-noise-probes", "--out", out,
                ]
            )  # fmt: skip
            ours = worst_case(Path(out), args.eps)
        print(f"| {model} | robustkit standard | {ours:.1%} | {ours_s:.0f} |")
        allocators = {"": None}
        if args.same_allocator:
            allocators[", robustkit's malloc thresholds"] = os.environ | {
                "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
                "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
            }
        for allocator, env in allocators.items():
            theirs_s, theirs = python_json(
                AUTOATTACK, model, args.data_root, str(args.num_samples), str(args.eps), env=env
            )
            accuracy = theirs["robust_accuracy"]
            tool = f"torchattacks AutoAttack{allocator}"
            print(f"| {model} | {tool} | {accuracy:.1%} | {theirs_s:.0f} |")
            print(
                f"| {model} | difference (ours - theirs{allocator}), time ratio | "
                f"{ours - accuracy:+.1%} | {ours_s / theirs_s:.2f}x |"
            )


if __name__ == "__main__":
    main()
