"""Quality of a generator, measured without downloads: per-pixel reconstruction MSE of held-out
test images under projection, and how confidently a classifier labels generated samples.

    python benchmarks/generator_quality.py --generator zoo:mnist-dcgan --dataset mnist \\
        --classifier zoo:mnist-cnn --images 64 --steps 200 --restarts 10
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robustkit.data import dataset_tensors, load_dataset
from robustkit.generative.training import GANTrainConfig, evaluate_generator
from robustkit.generative.zoo import resolve_generator
from robustkit.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="zoo:mnist-dcgan", help="zoo:NAME or a .pt file")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--classifier", default=None, help="e.g. zoo:mnist-cnn")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    generator = resolve_generator(args.generator)
    holdout = load_dataset(args.dataset, root=args.data_root, num_samples=args.images, seed=0)
    classifier = load_model(args.classifier, device="cpu") if args.classifier else None
    config = GANTrainConfig(
        eval_steps=args.steps, eval_restarts=args.restarts, eval_samples=args.samples
    )
    row = evaluate_generator(generator, dataset_tensors(holdout)[0], classifier, config)
    for key, value in row.items():
        print(f"{key:24s} {value:.4f}")


if __name__ == "__main__":
    main()
