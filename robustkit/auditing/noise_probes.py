"""The pure-noise probes of an audit (a mean x sigma grid of noise images, PGD from noise), sized
to the audit they serve.

Their full size costs about the same whatever the audit: nothing on MNIST, minutes for a large
model on large inputs, where it can dwarf a small audit. So in ``auto`` mode they may cost at most
:data:`PROBE_SHARE` of the audit's estimated cost, or what the full probes cost on MNIST-sized
inputs (:data:`FLOOR_PIXELS`) if that is more: MNIST audits keep the full probes, large inputs
get fewer cells, noise images, PGD steps and targets (never a smaller input: the model sees its
own size). Costs are counted, not timed, so the same command always gets the same probes: forward
passes, a forward and backward pass weighing :data:`GRADIENT_PASS`, times the input's pixels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from torch import nn

from robustkit.attacks import Attack, GaussianNoise, pgd_from_noise, pure_noise_probe
from robustkit.attacks.noise import GRID_SIDE, MAX_NOISE_TARGETS, Advance, grid_axes
from robustkit.auditing.plan import Plan, attack_iterations
from robustkit.auditing.probe_modes import Mode, check_mode

PROBE_SHARE = 0.2  # the probes may cost a fifth of the audit ...
FLOOR_PIXELS = 28 * 28  # ... or what the full probes cost on an MNIST image, if that is more
GRADIENT_PASS = 3  # a forward and backward pass costs about three forward passes


@dataclass(frozen=True)
class ProbePlan:
    """The size of the noise probes: a ``grid`` x ``grid`` pure-noise grid of
    ``samples_per_cell`` images per cell, and PGD-``steps`` from ``samples_per_class`` noise
    images towards each of ``targets`` classes (all of them when the model has fewer)."""

    grid: int = GRID_SIDE
    samples_per_cell: int = 64
    targets: int = MAX_NOISE_TARGETS
    samples_per_class: int = 16
    steps: int = 40

    def grid_passes(self) -> int:
        """Forward passes of the pure-noise grid."""
        return self.grid**2 * self.samples_per_cell

    def pgd_passes(self, num_classes: int) -> int:
        """Forward-pass equivalents of PGD from noise: a start and an end pass around ``steps``
        gradient passes, for every noise image."""
        images = min(num_classes, self.targets) * self.samples_per_class
        return images * (2 + GRADIENT_PASS * self.steps)

    def passes(self, num_classes: int) -> int:
        """Forward-pass equivalents of both probes."""
        return self.grid_passes() + self.pgd_passes(num_classes)


FULL = ProbePlan()
# Each dimension's smaller sizes, down to the smallest the probes still make sense at.
LADDERS: dict[str, tuple[int, ...]] = {
    "samples_per_cell": (32, 16, 8, 4),
    "samples_per_class": (8, 4, 2),
    "steps": (20, 10, 5),
    "grid": (5, 3),
    "targets": (5, 2),
}


@dataclass(frozen=True)
class ProbeChoice:
    """The probes an audit runs (None: off), whether they were cut from :data:`FULL`, and the
    estimated costs that decided it (forward-pass equivalents on the audit's input)."""

    mode: Mode
    plan: ProbePlan | None
    num_classes: int
    audit_passes: int
    allowed_passes: int

    @property
    def cut(self) -> bool:
        return self.plan is not None and self.plan != FULL

    @property
    def passes(self) -> int:
        return 0 if self.plan is None else self.plan.passes(self.num_classes)

    @property
    def share(self) -> float:
        """The probes' estimated cost as a share of the audit's attacks (for the progress bar)."""
        return self.passes / max(self.audit_passes, 1)

    def record(self) -> dict[str, Any]:
        """What run.json keeps of the probes (``targets``: the classes PGD from noise aims at)."""
        size = {}
        if self.plan is not None:
            size = {
                **dataclasses.asdict(self.plan),
                "targets": min(self.num_classes, self.plan.targets),
            }
        return {
            "mode": self.mode,
            "cut": self.cut,
            **size,
            "passes": self.passes,
            "full_passes": FULL.passes(self.num_classes),
            "audit_passes": self.audit_passes,
            "allowed_passes": self.allowed_passes,
        }


def attack_passes(attack: Attack) -> int:
    """Forward-pass equivalents one attack spends per sample and budget at most: its
    iterations, gradient passes unless it only queries the model (Gaussian noise, Square)."""
    if isinstance(attack, GaussianNoise):
        return attack.repeats
    weight = 1 if hasattr(attack, "queries") else GRADIENT_PASS
    return weight * attack_iterations(attack) * int(getattr(attack, "eot_samples", 1))


def audit_passes(plan: Plan, num_samples: int) -> int:
    """Forward-pass equivalents of an audit at most (no early stop): a clean pass, and every
    attack at every budget of its norm followed by a scoring pass, per judging pass and sample;
    one pass per corruption and severity."""
    per_sample = plan.eval_passes
    for attack in [*plan.independent, *plan.cascade]:
        budgets = len(plan.budgets.get(attack.norm, ()))
        per_sample += budgets * (attack_passes(attack) + plan.eval_passes)
    corruptions = plan.corruptions.jobs() if plan.corruptions is not None else 0
    return num_samples * (per_sample + corruptions)


def choose_probes(
    mode: bool | str,
    plan: Plan,
    *,
    num_samples: int,
    input_shape: Sequence[int],
    num_classes: int,
) -> ProbeChoice:
    """The probes for an audit running ``plan`` on ``num_samples`` inputs of ``input_shape``:
    full, off, or (``auto``) the largest cut of :data:`FULL` within the allowance, cutting each
    dimension in turn (the smallest cut when even that is over)."""
    checked = check_mode(mode)
    cost = audit_passes(plan, num_samples)
    floor = FULL.passes(MAX_NOISE_TARGETS) * FLOOR_PIXELS / math.prod(input_shape)
    allowed = int(max(PROBE_SHARE * cost, floor))
    probes: ProbePlan | None = None if checked == "off" else FULL
    if checked == "auto":
        probes = _cut(FULL, num_classes, allowed)
    return ProbeChoice(checked, probes, num_classes, cost, allowed)


def _cut(probes: ProbePlan, num_classes: int, allowed: int) -> ProbePlan:
    """``probes``, each dimension stepped down its ladder in turn until they fit ``allowed``."""
    steps = {name: list(sizes) for name, sizes in LADDERS.items()}
    while probes.passes(num_classes) > allowed and any(steps.values()):
        for name, sizes in steps.items():
            if sizes and probes.passes(num_classes) > allowed:
                probes = dataclasses.replace(probes, **{name: sizes.pop(0)})
    return probes


def run_probes(
    model: nn.Module,
    choice: ProbeChoice,
    input_shape: tuple[int, int, int],
    *,
    class_names: Sequence[str] | None = None,
    advance: Advance | None = None,
) -> list[pd.DataFrame]:
    """The pure-noise grid and the PGD-from-noise table of the chosen probes (none when off);
    ``advance`` hears each finished part's share of their whole cost."""
    probes = choice.plan
    if probes is None:
        return []
    total = choice.passes
    means, sigmas = grid_axes(probes.grid)
    grid = pure_noise_probe(
        model,
        input_shape,
        means=means,
        sigmas=sigmas,
        samples_per_cell=probes.samples_per_cell,
        class_names=class_names,
        advance=None if advance is None else _scaled(advance, probes.grid_passes() / total),
    )
    pgd_share = probes.pgd_passes(choice.num_classes) / total
    targets = pgd_from_noise(
        model,
        input_shape,
        choice.num_classes,
        steps=probes.steps,
        samples_per_class=probes.samples_per_class,
        max_targets=probes.targets,
        advance=None if advance is None else _scaled(advance, pgd_share),
    )
    return [grid, targets]


def _scaled(advance: Advance, weight: float) -> Advance:
    return lambda share: advance(share * weight)
