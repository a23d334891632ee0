"""A small audit of a large-input model, start to exit: `robustkit audit --model timm:resnet18`
(random weights) on a seeded folder of 6 random 224-px images in 2 classes, `--attacks fgsm`,
noise probes at their default. Before the probes were sized to the audit they took minutes here
while the attack took seconds. Each run is a fresh process; wall time from start to exit.

    python benchmarks/large_input_probes.py                     # this checkout
    python benchmarks/large_input_probes.py --repo /path/to/other/checkout
    python benchmarks/large_input_probes.py -- --noise-probes full   # extra audit options
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from whole_process import timed

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("n01440764", "n01443537")  # ImageNet's tench and goldfish: the model's outputs 0, 1


def write_images(root: Path, count: int, size: int, seed: int) -> Path:
    """``count`` random ``size``-px PNG images shared out over the class folders."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / CLASSES[i % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout of robustkit to time")
    parser.add_argument("--model", default="timm:resnet18")
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("extra", nargs="*", help="more audit options, after --")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.repo.resolve())}
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        images = write_images(Path(tmp) / "images", args.images, args.size, seed=0)
        for run in range(args.repeats):
            out = Path(tmp) / f"out{run}"
            command = [
                sys.executable, "-m", "robustkit", "audit", "--model", args.model,
                "--dataset", f"imagefolder:{images}", "--image-size", str(args.size),
                "--attacks", "fgsm", "--num-samples", "0", "--device", "cpu",
                "--out", str(out), *args.extra,
            ]  # fmt: skip
            seconds, _ = timed(command, env=env)
            times.append(seconds)
            config = json.loads((out / "run.json").read_text())
            own = config["wall_time_s"]
            print(f"run {run + 1}: {seconds:.1f} s (the audit's own wall time: {own} s)")
        probes = config.get("noise_probes", "not recorded (code before the probes were sized)")
    print(f"repo: {args.repo}")
    print(f"noise probes: {probes}")
    print(f"wall seconds, start to exit (best of {args.repeats}): {min(times):.1f}")


if __name__ == "__main__":
    main()
