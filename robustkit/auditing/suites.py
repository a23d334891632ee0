"""Named attack suites: the attacks an audit runs as a cascade for its worst case.

``standard`` is AutoAttack's standard order (Croce & Hein 2020): APGD-CE, APGD-T (targeted DLR, 9
targets), FAB-T (9 targets) and the gradient-free Square attack with AutoAttack's 5,000 queries.
The gradient budgets were chosen by measurement (``benchmarks/vs_autoattack.py``): 100 APGD-CE
steps, where the CE attack is cheap and breaks most points, then 20 steps per target for APGD-T and
10 for FAB-T, escalated to AutoAttack's 100 where they fall short: after the 10-step runs, the 16
unbroken points closest to the boundary get a 100-step run, and if that breaks at least a quarter
of them, every unbroken point gets 100-step runs. On ``zoo:mnist-robust`` under L2 eps 2 FAB's
first adversarial lies near radius 19 and steps back by 0.9 per success: 10 steps broke none of the
points APGD left, 100 steps broke 95% of them (as AutoAttack's FAB-T does); under L-inf eps 0.3 the
probe breaks one or two of 16 (escalating on any break made the suite five times slower there for
nothing). FAB-T leaves a run as soon as its adversarial lies within eps (a cascade needs only the
verdict). Square keeps its 5,000 queries for the points that can use them: on the bundled robust
MNIST model it breaks points every gradient attack missed until its last thousand queries, and
cutting every point to 1,000 or 2,000 queries left robust accuracy above AutoAttack's. Instead it
races (``benchmarks/square_race.py``): after 250 queries only the quarter of the points with the
highest margin keeps searching, after 1,000 the top tenth; that broke the same points as the full
search at a sixth of its forward passes. The race stops narrowing once Square has broken 5% of its
points (under an L2 budget of 2 the same model loses 644 of 877 points to Square, and racing there
broke only 374). ``plus`` runs the original AutoAttack's reference budgets (100 steps everywhere)
with restarts, untargeted APGD-DLR and two full Square runs; ``quick`` is a smoke check for CI that
is not an evaluation.

``rand`` is AutoAttack's version for randomized models: APGD-CE, then APGD-DLR, each with EOT (the
loss and its gradient averaged over ``eot_samples`` passes, 20 by default); the audit gives it to a
model its randomness probe finds randomized, and judges every point over fresh passes
(:mod:`robustkit.models.passes`).

``scores`` and ``labels`` are the suites of black-box audits (``--access scores`` or ``labels``,
:mod:`robustkit.auditing.blackbox`), each attack held to the audit's query budget per point:
with scores only, Square's random search, then an NES gradient estimate (Ilyas et al. 2018) on
the points it left; with the top-1 label only, RayS (L-inf) then HopSkipJump.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from robustkit.auditing.spec import DEFAULTS
from robustkit.registry import unknown_name_error

if TYPE_CHECKING:  # the attacks (and torch) load when a suite builds them, not at import
    from robustkit.attacks import Attack

AttackSpec = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Suite:
    """Attack specs per norm, in cascade order; ``evaluation`` is False for smoke checks."""

    name: str
    linf: tuple[AttackSpec, ...]
    l2: tuple[AttackSpec, ...]
    description: str
    evaluation: bool = True
    l1: tuple[AttackSpec, ...] = ()

    def attacks(self, norms: Sequence[str]) -> list[Attack]:
        """The suite's attacks for the given norms (L-inf, L2, then L1), freshly built."""
        from robustkit.attacks import create_attack

        specs = {"linf": self.linf, "l2": self.l2, "l1": self.l1}
        return [
            create_attack(name, **kwargs)
            for norm in ("linf", "l2", "l1")
            if norm in norms
            for name, kwargs in specs[norm]
        ]


def _l2(specs: tuple[AttackSpec, ...]) -> tuple[AttackSpec, ...]:
    """The same specs under the L2 names (``-l2``)."""
    return tuple((f"{name}-l2", kwargs) for name, kwargs in specs)


_STANDARD: tuple[AttackSpec, ...] = (
    ("apgd-ce", {"steps": 100}),
    ("apgd-t", {"steps": 20, "num_targets": 9}),
    (
        "fab-t",
        {"steps": 10, "num_targets": 9, "stop_within_eps": True, "escalation_steps": 100},
    ),
    ("square", {"queries": 5000, "race": ((0.05, 0.25), (0.2, 0.1))}),
)
_PLUS: tuple[AttackSpec, ...] = (
    ("apgd-ce", {"steps": 100, "restarts": 5}),
    ("apgd-t", {"steps": 100, "num_targets": 9}),
    ("fab-t", {"steps": 100, "num_targets": 9, "stop_within_eps": True}),
    ("square", {"queries": 5000, "restarts": 2}),
    ("apgd-dlr", {"steps": 100, "restarts": 5}),
)
_RAND: tuple[AttackSpec, ...] = (
    ("apgd-ce", {"steps": 100}),
    ("apgd-dlr", {"steps": 100}),
)
_QUICK: tuple[AttackSpec, ...] = (
    ("apgd-ce", {"steps": 20}),
    ("apgd-t", {"steps": 20, "num_targets": 3}),
)

# L1: AutoAttack's L1 version (every APGD run with its 3x / 2x / 1x eps stages), with 3 FAB-T-L1
# restarts where AutoAttack takes one (a restart runs only on the points still unbroken); the
# comparison that chose them: docs/benchmarks.md, "The L1 ball".
_STANDARD_L1: tuple[AttackSpec, ...] = (
    ("apgd-ce-l1", {"steps": 100, "restarts": 5}),
    ("apgd-t-l1", {"steps": 100, "num_targets": 5}),
    ("fab-t-l1", {"steps": 100, "num_targets": 9, "restarts": 3, "stop_within_eps": True}),
    ("square-l1", {"queries": 5000}),
)
_PLUS_L1: tuple[AttackSpec, ...] = (
    ("apgd-ce-l1", {"steps": 100, "restarts": 5}),
    ("apgd-t-l1", {"steps": 100, "num_targets": 9}),
    ("fab-t-l1", {"steps": 100, "num_targets": 9, "restarts": 5, "stop_within_eps": True}),
    ("square-l1", {"queries": 5000, "restarts": 2}),
)
_QUICK_L1: tuple[AttackSpec, ...] = (
    ("apgd-ce-l1", {"steps": 20}),
    ("apgd-t-l1", {"steps": 20, "num_targets": 3}),
)

# Black-box suites: what an attacker who sees the scores, or the top-1 label only, can run.
_SCORES: tuple[AttackSpec, ...] = (("square", {}), ("nes-linf", {}))
_SCORES_L2: tuple[AttackSpec, ...] = (("square-l2", {}), ("nes-l2", {}))
_SCORES_L1: tuple[AttackSpec, ...] = (("square-l1", {}),)
_LABELS: tuple[AttackSpec, ...] = (("rays-linf", {}), ("hsj-linf", {}))
_LABELS_L2: tuple[AttackSpec, ...] = (("hsj-l2", {}),)

SUITES: dict[str, Suite] = {
    "quick": Suite(
        "quick",
        _QUICK,
        _l2(_QUICK),
        "APGD-CE and APGD-T (3 targets), 20 steps: a smoke check, not an evaluation",
        evaluation=False,
        l1=_QUICK_L1,
    ),
    "standard": Suite(
        "standard",
        _STANDARD,
        _l2(_STANDARD),
        "AutoAttack's standard order: APGD-CE, APGD-T, FAB-T, Square",
        l1=_STANDARD_L1,
    ),
    "plus": Suite(
        "plus",
        _PLUS,
        _l2(_PLUS),
        "AutoAttack's reference budgets, restarts, untargeted APGD-DLR and a longer Square",
        l1=_PLUS_L1,
    ),
    "rand": Suite(
        "rand",
        _RAND,
        _l2(_RAND),
        "for randomized models: APGD-CE and APGD-DLR with EOT, points judged over fresh passes",
    ),
    "scores": Suite(
        "scores",
        _SCORES,
        _SCORES_L2,
        "black-box, scores only (--access scores): Square, then NES",
        l1=_SCORES_L1,
    ),
    "labels": Suite(
        "labels",
        _LABELS,
        _LABELS_L2,
        "black-box, top-1 label only (--access labels): RayS (L-inf), then HopSkipJump",
    ),
}
DEFAULT_SUITE = DEFAULTS.suite
DEFAULT_ATTACKS = DEFAULTS.diagnostics  # the diagnostics beside it
RANDOMIZED_SUITE = DEFAULTS.randomized_suite  # for a model the randomness probe finds randomized


def get_suite(name: str) -> Suite:
    """The suite called ``name``; an unknown name gets a did-you-mean error."""
    if name not in SUITES:
        raise unknown_name_error("suite", name, SUITES)
    return SUITES[name]
