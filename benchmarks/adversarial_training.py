"""Wall time of one adversarial-training epoch relative to one clean epoch.

The same fresh network (same seed) is trained for one epoch on the same MNIST training images
by natural training, fast FGSM-RS (Wong et al. 2020) and PGD-7 (Madry et al. 2018), each through
``robustkit.training.train``. Only the optimisation steps are timed (``train_seconds``): the
held-out monitoring after the epoch is left out. Targets: FGSM-RS <= 2.2x, PGD-k about (k+1)x.

Run: ``python benchmarks/adversarial_training.py --data-root DIR [--num-samples N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import torch

from robustkit.data import load_dataset
from robustkit.training import TrainConfig, fresh_model, train

METHODS = {"natural": "natural", "fgsm-rs": "fgsm-rs", "pgd-7": "pgd"}


def epoch_seconds(method: str, args: argparse.Namespace, out_dir: Path) -> float:
    """Best-of-repeats wall time of the optimisation steps of one epoch."""
    info = load_dataset(
        "mnist", root=args.data_root, train=True, num_samples=args.num_samples, seed=0
    )
    config = TrainConfig(
        method=method, eps=0.3, steps=7, epochs=1, batch_size=100, holdout=100, guard=False
    )
    times = []
    for _ in range(args.repeats):
        model = fresh_model(args.arch, info, seed=0, device="cpu")
        result = train(model, info, config, out=out_dir / f"{method}.pt")
        times.append(result.history[0]["train_seconds"])
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default=os.environ.get("ROBUSTKIT_DATA"))
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--arch", default="fast-mnist")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not args.data_root:
        parser.error("give --data-root (folder holding MNIST/raw) or set ROBUSTKIT_DATA")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        seconds = {name: epoch_seconds(m, args, Path(tmp)) for name, m in METHODS.items()}
    print(
        f"arch:{args.arch}, {args.num_samples - 100} MNIST images, batch 100, eps 0.3, "
        f"{args.threads} thread(s), torch {torch.__version__}, {platform.processor() or 'cpu'}"
    )
    print(f"{'method':<10}{'epoch s':>10}{'x clean':>10}")
    for name, value in seconds.items():
        print(f"{name:<10}{value:>10.2f}{value / seconds['natural']:>10.2f}")


if __name__ == "__main__":
    main()
