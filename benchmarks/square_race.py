"""Square Attack with and without racing, on the points the standard suite's gradient attacks
leave robust: how many each breaks, and how many forward passes and seconds it spends.

The gradient attacks (APGD-CE, APGD-T, FAB-T at the standard suite's budgets) run once; then each
Square configuration runs from the same seeds on the points they left.

    python benchmarks/square_race.py --data-root $ROBUSTKIT_DATA --num-samples 1000 --seeds 0,1,2
    python benchmarks/square_race.py --model zoo:fashion-robust --dataset fashion-mnist --eps 0.1
    python benchmarks/square_race.py --norm l2 --eps 2.0
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch import Tensor, nn

from robustkit.attacks import create_attack
from robustkit.auditing.suites import get_suite
from robustkit.cpu_memory import keep_freed_memory
from robustkit.data import load_dataset
from robustkit.data.tensors import dataset_tensors
from robustkit.models import load_model
from robustkit.testing.counting import CountingModel

RACES: dict[str, tuple[tuple[float, float], ...]] = {
    "full": (),
    "race 5%:25%, 20%:10%": ((0.05, 0.25), (0.2, 0.1)),
    "race 5%:15%, 20%:5%": ((0.05, 0.15), (0.2, 0.05)),
}


def left_by_gradient_attacks(
    model: nn.Module, x: Tensor, y: Tensor, eps: float, norm: str
) -> Tensor:
    """Indices of the points the standard suite's gradient attacks leave robust."""
    with torch.no_grad():
        alive = model(x).argmax(dim=1) == y
    for attack in get_suite("standard").attacks([norm]):
        if attack.name.startswith("square"):
            continue
        todo = alive.nonzero().squeeze(1)
        alive[todo[attack(model, x[todo], y[todo], eps=eps).success]] = False
    return alive.nonzero().squeeze(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("ROBUSTKIT_DATA"))
    parser.add_argument("--model", default="zoo:mnist-robust")
    parser.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist")
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--norm", choices=["linf", "l2"], default="linf")
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    if not args.data_root:
        parser.error("give --data-root or set ROBUSTKIT_DATA (MNIST raw files)")
    keep_freed_memory()
    model = load_model(args.model, device="cpu")
    info = load_dataset(args.dataset, root=args.data_root, num_samples=args.num_samples, seed=0)
    x, y = dataset_tensors(info)
    torch.manual_seed(0)
    left = left_by_gradient_attacks(model, x, y, args.eps, args.norm)
    budget = f"{args.norm} eps {args.eps:g}"
    print(f"{len(left)} of {len(x)} points left by APGD-CE, APGD-T and FAB-T at {budget}")
    print("| Square | seed | broken | forward passes | seconds |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, race in RACES.items():
        for seed in (int(s) for s in args.seeds.split(",")):
            counting = CountingModel(model)
            square = "square" if args.norm == "linf" else "square-l2"
            attack = create_attack(square, queries=args.queries, race=race)
            torch.manual_seed(seed)
            started = time.perf_counter()
            result = attack(counting, x[left], y[left], eps=args.eps)
            seconds = time.perf_counter() - started
            broken = int(result.success.sum())
            print(f"| {name} | {seed} | {broken} | {counting.images:,} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
