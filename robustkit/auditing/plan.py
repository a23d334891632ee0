"""The plan of an audit: which attacks run alone, which as a suite's cascade, at which budgets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from robustkit.attacks import Attack
from robustkit.auditing.inputs import build_attack
from robustkit.auditing.suites import DEFAULT_SUITE, get_suite
from robustkit.errors import RobustkitError

DEFAULT_ATTACKS = ("fgsm", "pgd-linf", "pgd-l2", "gaussian-noise")  # the diagnostics
DEFAULT_BUDGETS: dict[str, tuple[float, ...]] = {
    "linf": (0.1, 0.2, 0.3),
    "l2": (1.0, 2.0, 3.0),
    "l1": (5.0, 10.0, 15.0),
    "gaussian": (0.1, 0.3, 0.5),
}


@dataclass(frozen=True)
class Plan:
    """What an audit runs: ``independent`` attacks each on every correctly classified point (the
    diagnostics and the attacks picked by name), then the ``cascade`` (a suite) on the points
    still robust, at every budget of each norm (listed ascending; the independent attacks run
    them in that order, the cascade from the largest down)."""

    independent: list[Attack]
    cascade: list[Attack]
    budgets: dict[str, list[float]]
    suite: str | None = None

    def jobs(self) -> int:
        """Attack x budget units per batch and threat (for progress bars)."""
        return sum(len(self.budgets[a.norm]) for a in [*self.independent, *self.cascade])

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
    eps: Sequence[float],
    eps_l2: Sequence[float] | None,
    sigmas: Sequence[float] | None,
    eps_l1: Sequence[float] | None = None,
) -> Plan:
    """The attacks to run and the budgets of each norm (ascending), checked: at least one attack,
    and budgets for every attack's norm. The suite runs only on norms that have budgets; L2 and
    noise budgets (and L1's) left at None are the defaults where an attack of their norm runs."""
    diagnostics = attacks is None
    if attacks is None:
        attacks, suite = DEFAULT_ATTACKS, suite or DEFAULT_SUITE
    independent = [build_attack(a, steps=steps, restarts=restarts) for a in attacks]
    # Diagnostics use the default noise sigmas, never default L2 budgets: L2 runs when asked for.
    named = {a.norm for a in independent} - ({"l2"} if diagnostics else set())
    given = {"linf": eps, "l2": eps_l2, "l1": eps_l1, "gaussian": sigmas}
    budgets: dict[str, list[float]] = {}
    for norm, values in given.items():
        if values is None:
            values = DEFAULT_BUDGETS[norm] if norm in named else ()
        if values:
            budgets[norm] = sorted(set(map(float, values)))
    if diagnostics:  # the default diagnostics follow the budgets given, never the reverse
        independent = [a for a in independent if a.norm in budgets]
    cascade = [] if suite is None else get_suite(suite).attacks(list(budgets))
    if not independent and not cascade:
        raise RobustkitError("give at least one attack, e.g. --attacks pgd-linf")
    for attack in independent:
        if attack.norm not in budgets:
            raise RobustkitError(f"attack {attack.name!r} needs {attack.norm} budgets: none given")
    used = {a.norm for a in [*independent, *cascade]}
    return Plan(
        independent=independent,
        cascade=cascade,
        budgets={norm: values for norm, values in budgets.items() if norm in used},
        suite=suite,
    )
