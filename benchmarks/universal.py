"""Universal perturbations of the bundled models: fooling rate on held-out images, against ART.

For each bundled model (``zoo:mnist-cnn``, ``zoo:mnist-robust``, ``zoo:fashion-cnn``,
``zoo:fashion-robust``) and L-inf eps 0.1, 0.2 and 0.3: robustkit's universal perturbation
(``UniversalPGD``, default settings) and ART's ``UniversalPerturbation`` (the original per-image
algorithm with FGSM of eps/10 as its inner attack, the best of eps/2, eps/4 and eps/10 on MNIST;
``--art-epochs`` passes, by default about the model passes robustkit spends) are crafted on the
same seeded training images and scored on the same seeded test images: fooling rate (the
prediction changed) and accuracy with the perturbation added. Model passes (images forwarded,
counted on the model) and wall time for each. Then the ``universal`` rows of ``robustkit
transfer`` on the bundled MNIST models and their ensemble. Markdown tables on stdout.

Run: ``python benchmarks/universal.py --data-root DIR`` (``--no-art`` for robustkit alone).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from benchmark_options import add_threads, apply_threads
from torch import Tensor, nn

from robustkit.attacks.peers import art_classifier
from robustkit.attacks.universal import UniversalPGD, score_universal
from robustkit.data import load_dataset, subset
from robustkit.models import load_model
from robustkit.transfer.matrix import data_tensors

MODELS = {
    "mnist": ("zoo:mnist-cnn", "zoo:mnist-robust"),
    "fashion-mnist": ("zoo:fashion-cnn", "zoo:fashion-robust"),
}
ART_STEP = 10  # ART's inner FGSM step: eps / this


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=None, help="default: $ROBUSTKIT_DATA")
    parser.add_argument("--images", type=int, default=1000, help="held-out test images")
    parser.add_argument("--crafting", type=int, default=2000, help="training images to craft on")
    parser.add_argument("--eps", default="0.1,0.2,0.3")
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--art", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--art-epochs", type=int, default=3, help="ART's max_iter")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--transfer", action=argparse.BooleanOptionalAction, default=True)
    add_threads(parser)
    return parser.parse_args(argv)


class Counting(nn.Module):
    """The model, counting the images it is given."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.images = 0

    def forward(self, x: Tensor) -> Tensor:
        self.images += len(x)
        return self.model(x)


def craft_ours(model: Counting, x: Tensor, eps: float, seed: int) -> tuple[Tensor, int, float]:
    model.images = 0
    started = time.perf_counter()
    found = UniversalPGD(seed=seed)(model, x, eps=eps)
    return found.perturbation, model.images, time.perf_counter() - started


def craft_art(
    model: Counting, x: Tensor, eps: float, seed: int, epochs: int
) -> tuple[Tensor, int, float]:
    from art.attacks.evasion import UniversalPerturbation

    random.seed(seed)  # ART shuffles the images with Python's random
    np.random.seed(seed)
    attack = UniversalPerturbation(
        art_classifier(model, x),
        attacker="fgsm",
        attacker_params={"eps": eps / ART_STEP},
        delta=0.0,
        max_iter=epochs,
        eps=eps,
        norm=np.inf,
        verbose=False,
    )
    model.images = 0
    started = time.perf_counter()
    attack.generate(x.numpy())
    return torch.from_numpy(attack.noise[0]), model.images, time.perf_counter() - started


def fooling_rows(args: argparse.Namespace) -> pd.DataFrame:
    rows = []
    for dataset in args.datasets.split(","):
        train = load_dataset(dataset, root=args.data_root, train=True)
        crafting, _ = data_tensors(subset(train, args.crafting, args.seed))
        held, labels = data_tensors(
            load_dataset(dataset, root=args.data_root, num_samples=args.images, seed=args.seed)
        )
        for spec in MODELS[dataset]:
            model = Counting(load_model(spec, device="cpu"))
            for eps in map(float, args.eps.split(",")):
                runs = {"robustkit": craft_ours(model, crafting, eps, args.seed)}
                if args.art:
                    runs["ART"] = craft_art(model, crafting, eps, args.seed, args.art_epochs)
                for tool, (delta, passes, seconds) in runs.items():
                    score = score_universal(model, delta, held, labels)
                    rows.append(
                        {
                            "model": spec,
                            "eps": eps,
                            "tool": tool,
                            "fooling rate": f"{score.fooling_rate:.1%}",
                            "clean acc": f"{score.clean_accuracy:.1%}",
                            "acc with it": f"{score.accuracy:.1%}",
                            "passes": passes,
                            "seconds": round(seconds, 1),
                        }
                    )
                    print(rows[-1], file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def transfer_rows(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``robustkit transfer --universal`` on the bundled MNIST models: (matrix, universal)."""
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable,
            "-m",
            "robustkit",
            "transfer",
            "--models",
            ",".join(MODELS["mnist"]),
            "--ensemble",
            "--universal",
            "--universal-samples",
            str(args.crafting),
            "--eps",
            "0.3",
            "--num-samples",
            str(args.images),
            "--seed",
            str(args.seed),
            "--out",
            out,
        ]
        if args.data_root is not None:
            command += ["--data-root", str(args.data_root)]
        print(" ".join(command[2:]), file=sys.stderr, flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        pivot = pd.read_csv(Path(out) / "transfer_matrix.pivot.csv", index_col=0)
        universal = pd.read_csv(Path(out) / "transfer_universal.csv")
    return pivot, universal


def markdown(frame: pd.DataFrame, index: bool = False) -> str:
    """A frame as a markdown table (pandas' to_markdown needs tabulate)."""
    if index:
        frame = frame.reset_index()
    cells = [[str(c) for c in frame.columns]] + [[str(v) for v in row] for row in frame.to_numpy()]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("---" for _ in frame.columns) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    apply_threads(args)
    print(f"torch threads: {torch.get_num_threads()}\n")
    print(markdown(fooling_rows(args)))
    if args.transfer:
        pivot, universal = transfer_rows(args)
        print("\nrobustkit transfer, pgd-linf eps 0.3 (conditioned success rate):\n")
        print(markdown(pivot.map(lambda v: f"{v:.1%}"), index=True))
        print("\nits universal rows, per target:\n")
        for column in ("fooling_rate", "clean_accuracy", "accuracy"):
            universal[column] = universal[column].map(lambda v: f"{v:.1%}")
        print(markdown(universal))


if __name__ == "__main__":
    main()
