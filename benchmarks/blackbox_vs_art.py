"""Our decision-based attacks against ART's HopSkipJump at the same query budget, labels only.

``zoo:mnist-cnn`` on the seeded subset of MNIST test images the audit draws (seed 0), every
tool given only the top-1 class (the model wrapped to answer a one-hot vector) and the same
per-point budget; each point's queries are counted by the same kind of wrapper on both sides
(ours: rows forwarded, checked against the ``queries`` our attacks report; ART's:
``peer_queries.Ledger``, which stops it at the budget). Robust accuracy at 100 queries and at
the budget (a point is broken at a budget if one of its queries within it was adversarial
within eps; points the model misclassifies count as broken), and wall time.

    python benchmarks/blackbox_vs_art.py --data-root $ROBUSTKIT_DATA [--num-samples 100] \\
        [--budget 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from peer_queries import art_hop_skip_jump
from torch import Tensor, nn

from robustkit.attacks import create_attack
from robustkit.data import load_dataset
from robustkit.models import load_model
from robustkit.models.access import LabelsOnly
from robustkit.testing.counting import CountingModel

THREATS = (("linf", 0.3, ("hsj-linf", "rays-linf")), ("l2", 3.0, ("hsj-l2",)))
CHECKPOINTS = (100,)


@dataclass
class Row:
    tool: str
    attack: str
    norm: str
    eps: float
    first: Tensor  # per correctly classified point, its first query adversarial within eps
    seconds: float
    rows: int


def ours(name: str, model: nn.Module, x: Tensor, y: Tensor, eps: float, budget: int) -> Row:
    """Our attack through the labels-only wrapper; its reported queries must add up to the
    rows the wrapper forwarded."""
    labels = CountingModel(LabelsOnly(model))
    attack = create_attack(name, max_queries=budget)
    torch.manual_seed(0)
    start = time.perf_counter()
    result = attack(labels, x, y, eps=eps)
    seconds = time.perf_counter() - start
    assert result.queries is not None and int(result.queries.sum()) == labels.images
    assert int(result.queries.max()) <= budget
    first = torch.where(result.success, result.queries.float(), math.inf)
    return Row("robustkit", name, attack.norm, eps, first, seconds, labels.images)


def art(norm: str, model: nn.Module, x: Tensor, y: Tensor, eps: float, budget: int) -> Row:
    """ART's HopSkipJump through the same labels-only wrapper, stopped at the budget."""
    start = time.perf_counter()
    first, rows = art_hop_skip_jump(LabelsOnly(model), x, y, norm=norm, eps=eps, budget=budget)
    seconds = time.perf_counter() - start
    return Row("ART", f"HopSkipJump {norm}", norm, eps, first, seconds, rows)


def robust(first: Tensor, total: int, budget: int) -> float:
    """Robust accuracy over all ``total`` images at ``budget`` queries."""
    return float((first > budget).sum()) / total


def table(rows: list[Row], total: int, budget: int) -> str:
    checkpoints = [*CHECKPOINTS, budget]
    head = " | ".join(f"robust @ {b:,}" for b in checkpoints)
    lines = [
        f"| tool | attack | eps | {head} | time (s) | rows forwarded |",
        "|" + "---|" * (5 + len(checkpoints)),
    ]
    for row in rows:
        cells = " | ".join(f"{100 * robust(row.first, total, b):.0f}%" for b in checkpoints)
        lines.append(
            f"| {row.tool} | {row.attack} | {row.norm} {row.eps:g} | {cells} | "
            f"{row.seconds:.1f} | {row.rows:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = load_model("zoo:mnist-cnn", device="cpu")
    info = load_dataset("mnist", root=args.data_root, num_samples=args.num_samples, seed=args.seed)
    x = torch.stack([image for image, _ in info.dataset])
    y = torch.tensor([int(label) for _, label in info.dataset])
    with torch.no_grad():
        correct = model(x).argmax(dim=1) == y
    x, y = x[correct], y[correct]
    runs: list[Callable[[], Row]] = []
    for norm, eps, names in THREATS:
        runs += [lambda n=name, e=eps: ours(n, model, x, y, e, args.budget) for name in names]
        runs.append(lambda n=norm, e=eps: art(n, model, x, y, e, args.budget))
    rows = [run() for run in runs]
    print(
        f"zoo:mnist-cnn, {args.num_samples} MNIST test images (seed {args.seed}, "
        f"{int(correct.sum())} correctly classified), labels only, {args.budget:,} queries "
        "per point"
    )
    print(table(rows, args.num_samples, args.budget))


if __name__ == "__main__":
    main()
