"""Robust-manifold adversarial training (Jalal et al. 2019): does it help the manifold defense?

Fine-tunes a bundled MNIST classifier with ``--method manifold`` (clean images plus on-range
images attacked in the generator's latent space), then audits the manifold-projection defense
built on the original and on the fine-tuned classifier with the same attacks: BPDA and BPDA + EOT
PGD, the oblivious PGD and the overpowered latent-space attack. The defended robust accuracy that
counts is the worst case over all of them; the ``(clean)`` rows are the clean accuracies.

    python benchmarks/manifold_training.py --data-root $ROBUSTKIT_DATA
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
from benchmark_options import add_defense_audit, add_threads, apply_threads

from robustkit.attacks import LatentOverpowered, PGDLinf
from robustkit.data import load_dataset
from robustkit.defenses.evaluation import audit_defense
from robustkit.defenses.manifold import load_defense
from robustkit.models import RobustModel, load_model
from robustkit.training import TrainConfig, train


def fine_tune(args: argparse.Namespace) -> RobustModel:
    """The classifier fine-tuned on the generator's range (reused if already written)."""
    weights = args.out / "manifold.pt"
    model = load_model(args.classifier, device="cpu")
    if weights.is_file():
        model.model.load_state_dict(torch.load(weights, weights_only=True))
        return model
    info = load_dataset(
        "mnist", root=args.data_root, train=True, num_samples=args.train_samples, seed=0
    )
    config = TrainConfig(
        method="manifold",
        generator=args.generator,
        eps=args.eps,
        steps=args.train_steps,
        epochs=args.epochs,
        lr=args.lr,
        holdout=200,
    )
    result = train(model, info, config, out=weights)
    print(f"fine-tuned in {result.metadata['wall_time_s']:.0f} s -> {weights}")
    return result.model


def audit(classifier: RobustModel, label: str, args: argparse.Namespace) -> pd.DataFrame:
    """Robust accuracy of the defense around ``classifier``, one row per attack."""
    torch.manual_seed(0)
    defense = load_defense(
        f"manifold:{args.generator}",
        classifier,
        steps=args.proj_steps,
        restarts=args.proj_restarts,
        lr=args.proj_lr,
    )
    data = load_dataset("mnist", root=args.data_root, num_samples=args.num_samples, seed=0)
    attacks = [
        PGDLinf(steps=args.attack_steps, rel_stepsize=2.5 / args.attack_steps),
        LatentOverpowered(steps=args.latent_steps),
    ]
    result = audit_defense(
        classifier,
        defense,
        data,
        attacks=attacks,
        eps=[args.eps],
        eot_samples=args.eot_samples,
        num_samples=0,  # every image of ``data``
        batch_size=args.num_samples,
    )
    result.save(args.out / label)
    summary = result.summary()
    clean = summary.groupby("model", sort=False, as_index=False)["clean_accuracy"].first()
    clean = clean.assign(attack="(clean)", robust_accuracy=clean["clean_accuracy"])
    rows = pd.concat([clean, summary], ignore_index=True)
    return rows.assign(classifier=label)[["classifier", "model", "attack", "robust_accuracy"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default="zoo:mnist-cnn")
    parser.add_argument("--generator", default="zoo:mnist-dcgan")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--train-samples", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--num-samples", type=int, default=100, help="MNIST test images audited")
    add_defense_audit(parser)
    add_threads(parser)
    parser.add_argument("--out", type=Path, default=Path("manifold-training"))
    args = parser.parse_args()
    apply_threads(args)
    args.out.mkdir(parents=True, exist_ok=True)
    tuned = fine_tune(args)
    original = load_model(args.classifier, device="cpu")
    rows = pd.concat([audit(original, "original", args), audit(tuned, "manifold-AT", args)])
    table = rows.pivot_table(
        index=["model", "attack"], columns="classifier", values="robust_accuracy", sort=False
    )
    print(table.to_string(float_format=lambda v: f"{v:.1%}"))
    table.to_csv(args.out / "summary.csv")


if __name__ == "__main__":
    main()
