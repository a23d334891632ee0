"""PGD's default step size, chosen by measurement against foolbox's PGD defaults.

Natural (and two adversarially trained) MNIST / Fashion-MNIST classifiers are attacked on a fixed
seeded subset of test images with robustkit's ``pgd-linf`` under several step-size rules and
with foolbox's ``LinfPGD`` at its own defaults (``rel_stepsize`` 0.01 / 0.3, random start) at the
same number of steps; the lowest robust accuracy is the strongest attack. ``pgd-l2`` is checked
the same way against foolbox's ``L2PGD`` defaults (``rel_stepsize`` 0.025, 50 steps).

Models: ``arch:`` architectures from ``robustkit.models.architectures`` trained here naturally
(Adam, lr 1e-3, batch 128, ``--epochs`` epochs, cached under ``benchmarks/cache/``) and the
bundled ``zoo:`` models. L-inf at 40, 10 and 100 steps (the slow madry-mnist at 40 only); L2 at
50 and 100 steps on two MNIST models. Every attack call starts from the same seed, so that all
rules share their random starts (foolbox draws its start from the same global torch RNG).

Run: ``python benchmarks/pgd_stepsize.py --data-root DIR`` (13 min of CPU on one thread once the
models are cached, 16 min wall on a busy 2-core machine; training adds about 4 min the first
time; ``--quick`` is a one-minute smoke run).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.attacks.pgd import (
    DEFAULT_MIN_REL_STEPSIZE,
    DEFAULT_STEP_BUDGET,
    PGDL2,
    GradientAttack,
    PGDLinf,
)
from robustkit.data import dataset_tensors, load_dataset
from robustkit.models import RobustModel, load_model
from robustkit.models.architectures import ARCHITECTURES
from robustkit.training import DATASET_STATS

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelSpec:
    """A model to attack: ``arch:NAME`` (trained here) or ``zoo:NAME``, its data and budgets."""

    spec: str
    dataset: str
    eps: tuple[float, ...]
    only_steps: tuple[int, ...] | None = None  # L-inf step counts to run (None: all)


MODELS = (
    ModelSpec("arch:mnist-cnn", "mnist", (0.1, 0.2)),
    ModelSpec("arch:madry-mnist", "mnist", (0.1, 0.2), only_steps=(40,)),  # the slow one
    ModelSpec("arch:fast-mnist", "mnist", (0.1, 0.2)),
    ModelSpec("arch:mnist-cnn", "fashion-mnist", (0.05, 0.1)),
    ModelSpec("arch:fast-mnist", "fashion-mnist", (0.05, 0.1)),
    ModelSpec("zoo:mnist-cnn", "mnist", (0.1, 0.2)),
    ModelSpec("zoo:fashion-cnn", "fashion-mnist", (0.05, 0.1)),
    ModelSpec("zoo:mnist-robust", "mnist", (0.1, 0.2)),
    ModelSpec("zoo:fashion-robust", "fashion-mnist", (0.05, 0.1)),
)
L2_MODELS = ("zoo:mnist-cnn", "arch:fast-mnist")
L2_EPS = (1.0, 2.0)
FOOLBOX_L2_STEPS = 50  # L2PGD's default


# --- step-size rules ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CosinePGDLinf(PGDLinf):
    """PGD-linf whose step decays from twice the rule's step to 0 along a half cosine (the mean
    step is the rule's); a benchmark-only candidate, the step counter lives in ``_counter``."""

    _counter: list[int] = field(default_factory=lambda: [0], repr=False)

    def _single_run(self, *args: Any, **kwargs: Any) -> Any:
        self._counter[0] = 0
        return super()._single_run(*args, **kwargs)

    def _ascent(self, x: Tensor, grad: Tensor, stepsize: float) -> Tensor:
        k = self._counter[0]
        self._counter[0] += 1
        return super()._ascent(x, grad, stepsize * (1.0 + math.cos(math.pi * k / self.steps)))


Rule = Callable[[int], float]  # steps -> step size relative to eps
AttackFn = Callable[[nn.Module, Tensor, Tensor, float], Tensor]


def constant(rel: float) -> Rule:
    """The rule 'always ``rel``'."""
    return lambda steps: rel


LINF_RULES: dict[str, Rule] = {
    "2.5/steps (Madry)": lambda n: 2.5 / n,
    "0.01/0.3 (fb)": constant(0.01 / 0.3),
    "1/steps": lambda n: 1.0 / n,
    "0.05": constant(0.05),
    "0.1": constant(0.1),
    "0.15": constant(0.15),
}
L2_RULES: dict[str, Rule] = {
    "2.5/steps (Madry)": lambda n: 2.5 / n,
    "0.025 (fb)": constant(0.025),
    "0.1": constant(0.1),
}


COSINE_RULE = "cos, mean 2.5/steps"
DEFAULT_RULE = f"default max({DEFAULT_STEP_BUDGET:g}/steps, {DEFAULT_MIN_REL_STEPSIZE:g})"


def candidates(norm: str, steps: int, rules: dict[str, Rule]) -> dict[str, GradientAttack]:
    """Our PGD at ``steps`` under every rule, the cosine schedule (L-inf) and the defaults."""
    cls = PGDLinf if norm == "linf" else PGDL2
    out: dict[str, GradientAttack] = {
        name: cls(steps=steps, rel_stepsize=rule(steps)) for name, rule in rules.items()
    }
    if norm == "linf":
        out[COSINE_RULE] = CosinePGDLinf(steps=steps, rel_stepsize=2.5 / steps)
    out[DEFAULT_RULE] = cls(steps=steps)
    return out


def same_run_key(attack: GradientAttack) -> tuple[str, int, float]:
    """Attacks with equal keys run the same iteration from the same seed (computed once)."""
    return (type(attack).__name__, attack.steps, round(attack.stepsize(1.0), 12))


# --- models and data ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root",
        default=os.environ.get("ROBUSTKIT_DATA"),
        help="folder holding MNIST/raw and FashionMNIST/raw (default: $ROBUSTKIT_DATA)",
    )
    parser.add_argument("--num-samples", type=int, default=500, help="test images per dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps", type=int, nargs="*", default=[40, 10, 100], help="L-inf step counts"
    )
    parser.add_argument("--epochs", type=int, default=1, help="training epochs of arch: models")
    parser.add_argument("--extra-rels", type=float, nargs="*", default=[], help="more rel steps")
    parser.add_argument("--rules", nargs="*", default=None, help="subset of the rules (by name)")
    parser.add_argument(
        "--l2-steps", type=int, nargs="*", default=[FOOLBOX_L2_STEPS, 100], help="L2 step counts"
    )
    parser.add_argument("--models", nargs="*", default=None, help="subset: 'spec@dataset' items")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path, default=HERE / "cache")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "pgd_stepsize.md")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 images, 2 models")
    args = parser.parse_args(argv)
    if not args.data_root:
        parser.error("give --data-root or set ROBUSTKIT_DATA to a folder holding MNIST/raw")
    return args


def train_natural(
    arch: str, dataset: str, root: str, seed: int, epochs: int, cache_dir: Path
) -> RobustModel:
    """``arch`` after ``epochs`` epochs of natural training (Adam, lr 1e-3, batch 128); cached."""
    mean, std = DATASET_STATS[dataset]
    torch.manual_seed(seed)
    net = ARCHITECTURES[arch]()
    model = RobustModel(
        net, mean=mean, std=std, input_shape=(1, 28, 28), num_classes=10, name=arch, device="cpu"
    )
    cache = cache_dir / f"pgd_stepsize_{arch}_{dataset}_{epochs}ep_seed{seed}.pt"
    if cache.is_file():
        net.load_state_dict(torch.load(cache, map_location="cpu", weights_only=True))
    else:
        start = time.perf_counter()
        images, labels = dataset_tensors(load_dataset(dataset, root=root, train=True))
        model.train()
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=generator)
            for i in range(0, len(images), 128):
                idx = order[i : i + 128]
                loss = F.cross_entropy(model(images[idx]), labels[idx])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
        print(f"trained {arch} on {dataset} in {time.perf_counter() - start:.0f} s", flush=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), cache)
    return model


def get_model(spec: ModelSpec, args: argparse.Namespace) -> RobustModel:
    """The model of ``spec``, frozen and in eval mode."""
    if spec.spec.startswith("arch:"):
        arch = spec.spec.removeprefix("arch:")
        model = train_natural(
            arch, spec.dataset, args.data_root, args.seed, args.epochs, args.cache_dir
        )
    else:
        model = load_model(spec.spec, device="cpu")
    model.requires_grad_(False)
    return model.eval()


def test_images(dataset: str, args: argparse.Namespace) -> tuple[Tensor, Tensor]:
    """A fixed seeded subset of the test split."""
    info = load_dataset(
        dataset, root=args.data_root, train=False, num_samples=args.num_samples, seed=args.seed
    )
    return dataset_tensors(info)


# --- measuring ------------------------------------------------------------------------------------


def robust_accuracy(
    model: nn.Module, x_adv: Tensor, x: Tensor, y: Tensor, eps: float, norm: str
) -> float:
    """Share of points still classified correctly, after checking the budget and bounds."""
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    if size.max().item() > eps * (1 + 1e-4) + 1e-6 or x_adv.min() < 0 or x_adv.max() > 1:
        raise AssertionError(f"adversarials leave the {norm} ball or the pixel bounds")
    with torch.no_grad():
        return (model(x_adv).argmax(dim=1) == y).float().mean().item()


def run_foolbox(
    norm: str, steps: int, model: nn.Module, x: Tensor, y: Tensor, eps: float
) -> Tensor:
    """foolbox's PGD at its defaults but ``steps``."""
    import foolbox as fb

    cls = fb.attacks.LinfPGD if norm == "linf" else fb.attacks.L2PGD
    attack = cls(steps=steps)
    _, clipped, _ = attack(fb.PyTorchModel(model, bounds=(0.0, 1.0)), x, y, epsilons=eps)
    return clipped


@dataclass
class Table:
    """Robust accuracy per (row label, column label), in insertion order."""

    rows: dict[str, dict[str, float]] = field(default_factory=dict)

    def put(self, row: str, column: str, value: float) -> None:
        self.rows.setdefault(row, {})[column] = value

    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for values in self.rows.values():
            seen.update(dict.fromkeys(values))
        return list(seen)

    def markdown(self, reference: str) -> str:
        """The table plus, per column, the worst gap to ``reference`` (+ = weaker than it)."""
        cols = self.columns()
        lines = ["| model @ eps | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        for row, values in self.rows.items():
            best = min(values.values())
            cells = [
                f"**{values[c]:.1%}**"
                if values.get(c) == best
                else f"{values.get(c, math.nan):.1%}"
                for c in cols
            ]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        gaps, means = [], []
        for c in cols:
            diffs = [v[c] - v[reference] for v in self.rows.values() if c in v and reference in v]
            gaps.append(f"{100 * max(diffs):+.1f}" if diffs else "-")
            means.append(f"{100 * sum(diffs) / len(diffs):+.1f}" if diffs else "-")
        lines.append("| worst gap to foolbox (points) | " + " | ".join(gaps) + " |")
        lines.append("| mean gap to foolbox (points) | " + " | ".join(means) + " |")
        return "\n".join(lines)


def measure(
    label: str,
    attacks: dict[str, AttackFn | GradientAttack],
    model: nn.Module,
    data: tuple[Tensor, Tensor],
    eps: float,
    norm: str,
    seed: int,
    table: Table,
) -> None:
    """Every attack from the same seed, robust accuracy into ``table``; our attacks that would
    repeat an identical run (same class, steps and step) take the earlier result."""
    x, y = data
    done: dict[tuple[str, int, float], float] = {}
    for name, attack in attacks.items():
        key = same_run_key(attack) if isinstance(attack, GradientAttack) else None
        if key is not None and key in done:
            table.put(label, name, done[key])
            continue
        torch.manual_seed(seed)
        start = time.perf_counter()
        if isinstance(attack, GradientAttack):
            x_adv = attack(model, x, y, eps=eps).x_adv
        else:
            x_adv = attack(model, x, y, eps)
        value = robust_accuracy(model, x_adv, x, y, eps, norm)
        table.put(label, name, value)
        if key is not None:
            done[key] = value
        print(f"  {label:34s} {name:22s} {value:6.1%}  ({time.perf_counter() - start:.1f} s)")


def attacks_at(
    norm: str, steps: int, rules: dict[str, Rule], names: list[str] | None
) -> dict[str, AttackFn | GradientAttack]:
    """The candidates at ``steps``, then foolbox's PGD at the same steps (its other defaults)."""
    out: dict[str, AttackFn | GradientAttack] = {
        f"ours {name}": attack
        for name, attack in candidates(norm, steps, rules).items()
        if names is None or name in names
    }
    if norm == "l2" and steps == FOOLBOX_L2_STEPS:  # defaults against defaults
        out["ours 40 x 2.5/steps (Madry)"] = PGDL2(steps=40, rel_stepsize=2.5 / 40)
        out["ours PGDL2() (40 steps)"] = PGDL2()
    out["foolbox"] = lambda m, x, y, e: run_foolbox(norm, steps, m, x, y, e)
    return out


def main(argv: list[str] | None = None) -> None:
    """Train or load the models, run every rule at every eps, print and save the tables."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    models = list(MODELS)
    if args.quick:
        args.num_samples = min(args.num_samples, 100)
        models = [m for m in models if m.spec in ("zoo:mnist-cnn", "zoo:fashion-robust")]
    if args.models:
        models = [m for m in models if f"{m.spec}@{m.dataset}" in args.models]
    rules = dict(LINF_RULES)
    rules.update({f"{r:g}": constant(r) for r in args.extra_rels})
    data = {name: test_images(name, args) for name in sorted({m.dataset for m in models})}
    started = time.perf_counter()
    tables = {("linf", steps): Table() for steps in args.steps}
    tables.update({("l2", steps): Table() for steps in args.l2_steps})
    clean: dict[str, float] = {}
    for spec in models:
        model = get_model(spec, args)
        x, y = data[spec.dataset]
        name = f"{spec.spec} ({spec.dataset})"
        with torch.no_grad():
            clean[name] = (model(x).argmax(dim=1) == y).float().mean().item()
        print(f"{name}: clean accuracy {clean[name]:.1%}", flush=True)
        for steps in args.steps:
            if spec.only_steps is not None and steps not in spec.only_steps:
                continue
            attacks = attacks_at("linf", steps, rules, args.rules)
            for eps in spec.eps:
                label = f"{name} @ {eps:g}"
                measure(
                    label, attacks, model, (x, y), eps, "linf", args.seed, tables["linf", steps]
                )
        if spec.spec in L2_MODELS and spec.dataset == "mnist":
            for steps in args.l2_steps:
                attacks = attacks_at("l2", steps, L2_RULES, None)
                for eps in L2_EPS:
                    label = f"{name} @ {eps:g}"
                    measure(
                        label, attacks, model, (x, y), eps, "l2", args.seed, tables["l2", steps]
                    )
    seconds = time.perf_counter() - started
    print()
    print(report(args, clean, tables, seconds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(args, clean, tables, seconds))
    print(f"written to {args.out}")


def report(
    args: argparse.Namespace,
    clean: dict[str, float],
    tables: dict[tuple[str, int], Table],
    seconds: float,
) -> str:
    """The tables as Markdown."""
    lines = [
        "# PGD step-size rules against foolbox's PGD defaults",
        "",
        f"{args.num_samples} test images per dataset (seeded subset, seed {args.seed}); robust "
        f"accuracy, lower is stronger (best per row in bold); every attack from seed {args.seed}. "
        f"arch: models trained naturally for {args.epochs} epoch(s) here. Clean accuracy: "
        + ", ".join(f"{k} {v:.1%}" for k, v in clean.items())
        + f". Attacks took {seconds:.0f} s on {args.threads} thread(s). `ours default` is "
        f"robustkit's default step ({PGDLinf(steps=10).stepsize(1.0):g} x eps at 10 "
        f"steps, {PGDLinf(steps=40).stepsize(1.0):g} at 40, {PGDLinf(steps=100).stepsize(1.0):g} "
        "at 100). Gap rows: robust accuracy minus foolbox's, in points (+ = weaker than foolbox).",
    ]
    for (norm, steps), table in tables.items():
        if not table.rows:
            continue
        peer = "LinfPGD" if norm == "linf" else "L2PGD"
        rel = "0.01/0.3" if norm == "linf" else "0.025"
        lines += [
            "",
            f"## pgd-{norm}, {steps} steps (foolbox: {peer}(steps={steps}), rel {rel})",
            "",
            table.markdown("foolbox"),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
