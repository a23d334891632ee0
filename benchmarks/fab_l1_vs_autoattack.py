"""FAB-T-L1, ours against the original AutoAttack's ``FABAttack_PT``, image by image on the same
points: the smallest L1 adversarial each finds per target class, not only who breaks what.

    python benchmarks/fab_l1_vs_autoattack.py --data-root $ROBUSTKIT_DATA \\
        [--model zoo:mnist-robust] [--num-samples 100] [--eps 10,15] [--restarts 3]

The images are ``load_dataset("mnist", num_samples=N, seed=0)``, the seeded subset an audit with
``--num-samples N`` and ``benchmarks/vs_autoattack.py`` attack; only those the model classifies
right are attacked. Three checks:

1. The L1 boundary projection, AutoAttack's ``projection_l1`` against ours, on random rows shaped
   like MNIST (most pixels at 0 or 1, some weights tiny, some targets out of the box's reach).
2. Per target class (the runner-up classes by clean logit, AutoAttack's ``target_class`` 2 to
   10), one 100-step run from the clean point, AutoAttack's settings for its ``fab-t`` (alpha_max
   0.1, eta 1.05, beta 0.9): both are deterministic there, so the radii found should agree up to
   float rounding; printed: how many agree, where ours is larger or smaller, robust accuracy.
3. With ``--restarts R`` (R > 1), the whole attacks with R restarts per target (later ones from
   random points), as AutoAttack's ``perturb`` and our ``fab-t-l1`` run them: their random draws
   differ, so only the robust accuracies compare.

``--negligible-weight 0`` lets our L1 projection move coordinates of any non-zero weight, as it
did before it left those of weight <= 1e-8 in place (AutoAttack's cut-off): the radii then part
from the first step on, both ways (on zoo:mnist-robust at eps 10: 18.2% robust against
AutoAttack's 14.1% on the 99 points of ``--num-samples 100``, 16.3% against 16.1% on 490 of 500).

AutoAttack is imported as ``autoattack`` (installed from its repository) or as PyPI's
``pyautoattack`` (the same FAB code).
"""

from __future__ import annotations

import argparse
import importlib
import time
from types import ModuleType

import torch
from benchmark_options import add_threads, apply_threads
from torch import Tensor, nn
from torch.utils.data import DataLoader

from robustkit.attacks import fab_l1
from robustkit.attacks.base import perturbation_norm
from robustkit.attacks.fab_l1 import FABTargetedL1
from robustkit.data import load_dataset
from robustkit.models import load_model


def autoattack_module(name: str) -> ModuleType:
    """AutoAttack's ``name`` submodule, from ``autoattack`` or else ``pyautoattack``."""
    for package in ("autoattack", "pyautoattack"):
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError:
            continue
    raise SystemExit("install AutoAttack: pip install pyautoattack (or its repository)")


def check_projection(seed: int = 0) -> None:
    """AutoAttack's L1 projection against ours on random MNIST-like rows."""
    projection_l1 = autoattack_module("fab_projections").projection_l1
    generator = torch.Generator().manual_seed(seed)
    rows, size = 400, 784
    points = torch.rand(rows, size, generator=generator)
    points[points < 0.6] = 0.0
    points[points > 0.95] = 1.0
    weight = torch.randn(rows, size, generator=generator)
    tiny = torch.rand(rows, size, generator=generator) < 0.02
    weight[tiny] *= 1e-10  # a ReLU network's gradient has such coordinates
    reach = weight.abs().sum(dim=1)
    offset = (weight * points).sum(dim=1)
    change = torch.randn(rows, generator=generator) * reach * torch.linspace(0.01, 0.5, rows)
    theirs = projection_l1(points, weight, offset + change)
    ours = FABTargetedL1()._project(points, weight, change)
    gap = (theirs - ours).abs()
    print(
        f"projection_l1 vs ours on {rows} random rows: largest coordinate difference "
        f"{gap.max().item():.2e}, rows differing by > 1e-4: {int((gap.amax(dim=1) > 1e-4).sum())}, "
        f"largest L1-norm difference {(ours.abs().sum(1) - theirs.abs().sum(1)).abs().max():.2e}"
    )


def radii_per_target(
    model: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int, targets: int
) -> tuple[Tensor, Tensor, float, float]:
    """Per target rank (rows) and image (columns), the L1 radius each tool's first run finds
    (inf where none); and each tool's CPU seconds."""
    fab_pt = autoattack_module("fab_pt")
    theirs = fab_pt.FABAttack_PT(
        model, norm="L1", n_restarts=1, n_iter=steps, eps=eps, seed=0, targeted=True,
        n_target_classes=targets, device=x.device,
    )  # fmt: skip
    ours = FABTargetedL1(steps=steps, num_targets=targets)
    with torch.no_grad():
        logits = model(x)
    goals = ours._target_classes(logits, y, None)
    radii_theirs, radii_ours = [], []
    seconds_theirs = seconds_ours = 0.0
    for rank, goal in enumerate(goals):
        started = time.process_time()
        theirs.target_class = rank + 2  # their 2nd-highest logit, 3rd, ...
        adv = theirs.attack_single_run(x, y, use_rand_start=False, is_targeted=True)
        with torch.no_grad():
            broken = model(adv).argmax(dim=1) != y
        radii_theirs.append(torch.where(broken, perturbation_norm(adv - x, "l1"), torch.inf))
        seconds_theirs += time.process_time() - started
        started = time.process_time()
        _, radius = ours._single_run(
            model, x, y, goal, None, eps=eps, steps=steps, random_start=False
        )
        radii_ours.append(radius)
        seconds_ours += time.process_time() - started
    return torch.stack(radii_theirs), torch.stack(radii_ours), seconds_theirs, seconds_ours


def compare_runs(
    theirs: Tensor, ours: Tensor, budgets: list[float], tolerance: float = 1e-3
) -> None:
    """Per target and over targets: where the radii agree, and the robust accuracy at each eps."""
    both = torch.isfinite(theirs) & torch.isfinite(ours)
    close = (theirs == ours) | (both & ((ours - theirs).abs() <= tolerance * theirs))
    larger = (ours > theirs) & ~close
    smaller = (ours < theirs) & ~close
    print(
        f"per target and image ({theirs.numel()} runs): radii agree within {tolerance:g} "
        f"(relative) in {int(close.sum())}, ours larger in {int(larger.sum())}, "
        f"ours smaller in {int(smaller.sum())}"
    )
    best_theirs, best_ours = theirs.amin(dim=0), ours.amin(dim=0)
    ratio = (best_ours / best_theirs)[torch.isfinite(best_theirs) & torch.isfinite(best_ours)]
    count = len(best_theirs)
    print(
        f"smallest over targets, {count} images: median ratio ours/theirs "
        f"{ratio.median().item():.4f}, ours larger by > 1% on {int((ratio > 1.01).sum())}, "
        f"smaller by > 1% on {int((ratio < 0.99).sum())}"
    )
    for eps in budgets:
        robust_theirs = int((best_theirs > eps).sum())
        robust_ours = int((best_ours > eps).sum())
        print(
            f"robust at L1 eps {eps:g} (first runs only): AutoAttack {robust_theirs}/{count} "
            f"({100 * robust_theirs / count:.1f}%), ours {robust_ours}/{count} "
            f"({100 * robust_ours / count:.1f}%)"
        )


def whole_attacks(
    model: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int, targets: int, restarts: int
) -> None:
    """Both attacks as their tools run them, ``restarts`` runs per target: robust accuracy."""
    fab_pt = autoattack_module("fab_pt")
    theirs = fab_pt.FABAttack_PT(
        model, norm="L1", n_restarts=restarts, n_iter=steps, eps=eps, seed=0, targeted=True,
        n_target_classes=targets, device=x.device,
    )  # fmt: skip
    started = time.process_time()
    adv = theirs.perturb(x, y)
    with torch.no_grad():
        robust_theirs = int((model(adv).argmax(dim=1) == y).sum())
    seconds_theirs = time.process_time() - started
    torch.manual_seed(0)
    ours = FABTargetedL1(steps=steps, num_targets=targets, restarts=restarts)
    started = time.process_time()
    robust_ours = int((~ours(model, x, y, eps=eps).success).sum())
    seconds_ours = time.process_time() - started
    count = len(y)
    print(
        f"whole attacks, {restarts} restarts per target, robust at L1 eps {eps:g}: AutoAttack "
        f"{robust_theirs}/{count} ({100 * robust_theirs / count:.1f}%, {seconds_theirs:.0f} s "
        f"CPU), ours {robust_ours}/{count} ({100 * robust_ours / count:.1f}%, "
        f"{seconds_ours:.0f} s CPU)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="folder with the MNIST raw files")
    parser.add_argument("--model", default="zoo:mnist-robust")
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--eps", default="10", help="L1 budgets, comma-separated")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--targets", type=int, default=9)
    parser.add_argument("--restarts", type=int, default=1, help="> 1 adds check 3")
    parser.add_argument(
        "--negligible-weight",
        type=float,
        default=fab_l1.NEGLIGIBLE_WEIGHT,
        help="our projection's cut-off (0: the version before the fix)",
    )
    add_threads(parser)
    args = parser.parse_args()
    apply_threads(args)
    budgets = [float(eps) for eps in args.eps.split(",")]
    fab_l1.NEGLIGIBLE_WEIGHT = args.negligible_weight
    check_projection()
    model = load_model(args.model, device="cpu")
    info = load_dataset("mnist", root=args.data_root, num_samples=args.num_samples, seed=0)
    x, y = next(iter(DataLoader(info.dataset, batch_size=args.num_samples)))
    with torch.no_grad():
        right = model(x).argmax(dim=1) == y
    x, y = x[right], y[right]
    print(
        f"{args.model}: {len(y)} of {args.num_samples} images classified right, attacked; "
        f"our projection leaves |w_i| <= {args.negligible_weight:g} in place"
    )
    theirs, ours, seconds_theirs, seconds_ours = radii_per_target(
        model, x, y, max(budgets), args.steps, args.targets
    )
    print(f"first runs: AutoAttack {seconds_theirs:.0f} s CPU, ours {seconds_ours:.0f} s CPU")
    compare_runs(theirs, ours, budgets)
    for eps in budgets if args.restarts > 1 else []:
        whole_attacks(model, x, y, eps, args.steps, args.targets, args.restarts)


if __name__ == "__main__":
    main()
