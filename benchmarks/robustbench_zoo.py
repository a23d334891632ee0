"""robustbench:NAME end to end: robustbench's Standard (WideResNet-28-10) and Wong2020Fast
(PreActResNet-18), with seeded random weights saved in robustbench's checkpoint layout in a
temporary model_dir, each audited by a whole ``robustkit audit`` process on a small folder of
random 32x32 images; prints the wall time and the leaderboard lines of the terminal output.

Random weights make no robust model: the point is the path (zoo architecture, checkpoint layout,
loading, the leaderboard beside our numbers, its checks), not the accuracies.

    python benchmarks/robustbench_zoo.py --num-samples 8 --attacks fgsm
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from whole_process import timed

from robustkit.data.corrupted import CIFAR10_CLASSES
from robustkit.models.robustbench import untrained

MODELS = ("Standard", "Wong2020Fast")
EPS = "0.0313725"  # the leaderboard's 8/255
SHOWN = ("leaderboard:", "ours:", "warning:", "error:")


def write_images(root: Path, per_class: int, seed: int) -> Path:
    """``per_class`` random 32x32 PNGs in one folder per CIFAR-10 class."""
    rng = np.random.default_rng(seed)
    for name in CIFAR10_CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def save_random_weights(name: str, model_dir: Path, seed: int) -> str:
    """Seeded random weights for the cifar10 Linf entry ``name``, where robustbench keeps them;
    returns the entry's spec."""
    torch.manual_seed(seed)
    entry, module = untrained(name, dataset="cifar10", threat="Linf")
    path = entry.checkpoint(model_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), path)
    return entry.spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=8)
    parser.add_argument("--attacks", default="fgsm")
    parser.add_argument("--suite", default=None, help="a suite to run as well (e.g. quick)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = write_images(root / "images", per_class=2, seed=args.seed)
        env = os.environ | {"COLUMNS": "200"}  # the lines stay whole in the captured output
        for name in MODELS:
            spec = save_random_weights(name, root / "models", args.seed)
            command = [sys.executable, "-m", "robustkit", "audit", "--model", spec]
            command += ["--model-dir", str(root / "models"), "--dataset", f"imagefolder:{data}"]
            command += ["--num-samples", str(args.num_samples), "--attacks", args.attacks]
            command += ["--eps", EPS, "--no-noise-probes", "--seed", str(args.seed)]
            command += ["--out", str(root / name)]
            command += ["--suite", args.suite] if args.suite else []
            seconds, stdout = timed(command, env=env)
            print(f"{spec}: robustkit audit ran {seconds:.1f} s, start to exit")
            for line in stdout.splitlines():
                if line.startswith(SHOWN):
                    print(f"  {line}")


if __name__ == "__main__":
    main()
