"""The plan of an audit: which attacks run alone, which as a suite's cascade, at which budgets."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from robustkit.attacks import Attack
from robustkit.auditing.inputs import build_attack
from robustkit.auditing.spec import DEFAULTS, Corruptions
from robustkit.auditing.suites import get_suite
from robustkit.errors import RobustkitError

__all__ = ["Corruptions", "Plan", "attack_iterations", "plan_audit"]


@dataclass(frozen=True)
class Plan:
    """What an audit runs: ``independent`` attacks each on every correctly classified point (the
    diagnostics and the attacks picked by name), then the ``cascade`` (a suite) on the points
    still robust, at every budget of each norm (listed ascending; the independent attacks run
    them in that order, the cascade from the largest down). ``eval_passes`` fresh passes judge
    every point (more than one for a randomized model)."""

    independent: list[Attack]
    cascade: list[Attack]
    budgets: dict[str, list[float]]
    suite: str | None = None
    corruptions: Corruptions | None = None
    eval_passes: int = 1

    def jobs(self) -> int:
        """Attack x budget units per batch and threat (for progress bars), corruption x
        severity units included."""
        attacks = sum(len(self.budgets[a.norm]) for a in [*self.independent, *self.cascade])
        return attacks + (self.corruptions.jobs() if self.corruptions else 0)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {**a.describe(), "role": role}
            for role, attacks in (("independent", self.independent), ("cascade", self.cascade))
            for a in attacks
        ]


def plan_audit(
    attacks: Iterable[str | Attack] | None,
    suite: str | None,
    *,
    steps: int | None,
    restarts: int | None,
    eps: Sequence[float] | None,
    eps_l2: Sequence[float] | None,
    sigmas: Sequence[float] | None,
    eps_l1: Sequence[float] | None = None,
    corruptions: Corruptions | None = None,
    eot_samples: int = 1,
    eval_passes: int = 1,
) -> Plan:
    """The attacks to run and the budgets of each norm (ascending), checked: at least one attack
    (or corruptions), and budgets for every attack's norm. The suite runs only on norms that
    have budgets; L2, L1 and noise budgets left at None are the defaults where an attack of their
    norm runs (:data:`~robustkit.auditing.spec.DEFAULTS`). Attacks that work under EOT
    (``randomized_ok``: APGD) get ``eot_samples`` and ``eval_passes``."""
    diagnostics = attacks is None
    if attacks is None:
        attacks, suite = DEFAULTS.diagnostics, suite or DEFAULTS.suite
    independent = [build_attack(a, steps=steps, restarts=restarts) for a in attacks]
    # Diagnostics use the default noise sigmas, never default L2 budgets: L2 runs when asked for.
    named = {a.norm for a in independent} - ({"l2"} if diagnostics else set())
    given = {"linf": eps, "l2": eps_l2, "l1": eps_l1, "gaussian": sigmas}
    budgets: dict[str, list[float]] = {}
    for norm, values in given.items():
        if values is None:
            values = DEFAULTS.budgets(norm) if norm in named else ()
        if values:
            budgets[norm] = sorted(set(map(float, values)))
    if diagnostics:  # the default diagnostics follow the budgets given, never the reverse
        independent = [a for a in independent if a.norm in budgets]
    cascade = [] if suite is None else get_suite(suite).attacks(list(budgets))
    if not independent and not cascade and corruptions is None:
        raise RobustkitError("give at least one attack, e.g. --attacks pgd-linf")
    for attack in independent:
        if attack.norm not in budgets:
            raise RobustkitError(f"attack {attack.name!r} needs {attack.norm} budgets: none given")
    used = {a.norm for a in [*independent, *cascade]}
    passes = {"eot_samples": eot_samples, "eval_passes": eval_passes}
    return Plan(
        independent=[_with_passes(a, passes) for a in independent],
        cascade=[_with_passes(a, passes) for a in cascade],
        budgets={norm: values for norm, values in budgets.items() if norm in used},
        suite=suite,
        corruptions=corruptions,
        eval_passes=eval_passes,
    )


def _with_passes(attack: Attack, passes: dict[str, int]) -> Attack:
    """The attack with the pass counts among its fields, where it works under EOT
    (``randomized_ok``) and they are not one."""
    changes = {name: value for name, value in passes.items() if value != 1}
    return dataclasses.replace(attack, **changes) if attack.randomized_ok and changes else attack


def attack_iterations(attack: Attack) -> int:
    """Forward (and backward) passes one attack spends per sample at most, without early stop."""
    passes = int(getattr(attack, "queries", getattr(attack, "steps", 1)))
    restarts = int(getattr(attack, "restarts", 1))
    targets = int(getattr(attack, "num_targets", 1))
    return passes * restarts * targets
