"""Common corruptions: accuracy tables, the cross-check against imagecorruptions, and timing.

1. Accuracy of the bundled models (zoo:mnist-cnn, zoo:mnist-robust) per corruption x severity
   on a seeded subset of ``--num-samples`` MNIST test images, through ``audit`` itself
   (CIFAR-10-C table, the audit's default), with the corruption accuracy (mean) and the worst.
2. The cross-check: zoo:mnist-cnn's accuracy on robustkit's corruptions (ImageNet-C table, the
   mean of 2 draws) against imagecorruptions' (one draw) on the same ``--check-samples`` images,
   both on the digits padded to 32 x 32 RGB, with the gap and its sampling sigma.
3. Time per 1,000 images for all 75 corruptions: robustkit against imagecorruptions on the same
   32 x 32 RGB images (``--time-samples`` timed, scaled to 1,000), and robustkit on the audit's
   own 28 x 28 grey images (CIFAR-10-C table).

Run: ``python benchmarks/corruptions.py --data-root DIR [--num-samples 1000] [--check-samples
500] [--time-samples 200] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import pandas as pd
import torch

from robustkit.auditing.engine import audit
from robustkit.auditing.plan import Corruptions
from robustkit.auditing.results import CORRUPTION, CORRUPTION_MEAN, CORRUPTION_WORST
from robustkit.corruptions import SEVERITIES, corrupt, list_corruptions
from robustkit.corruptions.reference import compare, reference_corrupt, to_reference_frame
from robustkit.data import load_dataset, subset
from robustkit.models import load_model

MODELS = ("zoo:mnist-cnn", "zoo:mnist-robust")


def accuracy_table(model: str, info, count: int) -> tuple[pd.DataFrame, str]:
    """Corruption x severity accuracy of ``model`` from an audit, and its headline line."""
    result = audit(
        model,
        info,
        attacks=[],
        num_samples=0,  # every image of ``info``
        noise_probes=False,
        corruptions=Corruptions(list_corruptions(), list(SEVERITIES)),
    )
    summary = result.summary()
    rows = summary[summary["norm"] == CORRUPTION]
    mean = rows[rows["attack"] == CORRUPTION_MEAN].iloc[0]
    worst = rows[rows["attack"] == CORRUPTION_WORST].iloc[0]
    cells = rows[~rows["attack"].isin([CORRUPTION_MEAN, CORRUPTION_WORST])]
    table = (
        cells.pivot_table(
            index="corruption", columns="severity", values="robust_accuracy", sort=False
        )
        * 100
    )
    table.columns = [f"s{int(c)}" for c in table.columns]
    clean = float(result.frame.drop_duplicates("sample")["clean_correct"].mean())
    line = (
        f"{model} on {count} MNIST test images: clean {clean:.1%}, corruption accuracy "
        f"{mean['robust_accuracy']:.1%}, worst {worst['corruption']} severity "
        f"{int(worst['severity'])} ({worst['robust_accuracy']:.1%}); "
        f"{result.config['wall_time_s']:.0f} s"
    )
    return table.round(1), line


def crosscheck(images: torch.Tensor, labels: torch.Tensor) -> pd.DataFrame:
    model = load_model("zoo:mnist-cnn", device="cpu")
    rows = []
    for name in list_corruptions():
        for severity in SEVERITIES:
            found = compare(model, images, labels, name, severity, draws=2, seed=severity)
            rows.append(
                {
                    "corruption": name,
                    "severity": severity,
                    "ours": 100 * found["ours"],
                    "imagecorruptions": 100 * found["reference"],
                    "gap": 100 * (found["ours"] - found["reference"]),
                    "sigma": 100 * found["sigma"],
                }
            )
            print(
                f"  {name} s{severity}: {rows[-1]['ours']:.1f} vs "
                f"{rows[-1]['imagecorruptions']:.1f} (sigma {rows[-1]['sigma']:.1f})",
                flush=True,
            )
    return pd.DataFrame(rows)


def timing(frame: torch.Tensor, grey: torch.Tensor) -> pd.DataFrame:
    """Seconds per 1,000 images per corruption, summed over the five severities."""
    scale = 1000 / len(frame)
    rows = []
    for name in list_corruptions():
        spent = {"ours_32rgb": 0.0, "imagecorruptions_32rgb": 0.0, "ours_28grey": 0.0}
        for severity in SEVERITIES:
            generator = torch.Generator().manual_seed(severity)
            start = time.perf_counter()
            corrupt(frame, name, severity, generator, table="imagenet")
            spent["ours_32rgb"] += time.perf_counter() - start
            start = time.perf_counter()
            reference_corrupt(frame, name, severity, seed=severity)
            spent["imagecorruptions_32rgb"] += time.perf_counter() - start
            start = time.perf_counter()
            corrupt(grey, name, severity, generator)
            spent["ours_28grey"] += time.perf_counter() - start
        rows.append({"corruption": name, **{k: v * scale for k, v in spent.items()}})
        print(
            f"  {name}: " + ", ".join(f"{k} {v * scale:.1f} s" for k, v in spent.items()),
            flush=True,
        )
    table = pd.DataFrame(rows).set_index("corruption")
    table.loc["all 75"] = table.sum()
    return table.round(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default=os.environ.get("ROBUSTKIT_DATA"))
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--check-samples", type=int, default=500)
    parser.add_argument("--time-samples", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", default="accuracy,crosscheck,timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    parts = set(args.parts.split(","))
    print(f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or 'cpu'}")
    test = load_dataset("mnist", root=args.data_root)
    first = max(args.num_samples, args.check_samples, args.time_samples)
    images = torch.stack([test.dataset[i][0] for i in range(first)])
    labels = torch.tensor([int(test.dataset[i][1]) for i in range(first)])
    if "accuracy" in parts:
        info = subset(test, args.num_samples, 0)
        for model in MODELS:
            table, line = accuracy_table(model, info, args.num_samples)
            print(f"\n{line}\n{table.to_string()}")
    if "crosscheck" in parts:
        n = args.check_samples
        print(f"\ncross-check on the first {n} MNIST test images (ImageNet-C table):")
        gaps = crosscheck(images[:n], labels[:n])
        print(gaps.round(1).to_string(index=False))
        within = (gaps["gap"].abs() <= 2).mean()
        noise = (gaps["gap"].abs() <= (3 * gaps["sigma"]).clip(lower=2)).mean()
        print(
            f"within 2 points: {within:.0%} of 75; within max(2, 3 sigma): {noise:.0%}; "
            f"largest |gap| {gaps['gap'].abs().max():.1f} points"
        )
    if "timing" in parts:
        n = args.time_samples
        print(f"\nseconds per 1,000 images, 5 severities summed (timed on {n}):")
        print(timing(to_reference_frame(images[:n]), images[:n]).to_string())


if __name__ == "__main__":
    main()
