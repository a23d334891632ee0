"""Black-box audits: the attacks reach the model through an access level, scores or labels only.

:class:`BlackBoxThreats` is what such an audit attacks: the model behind a scores-only or
labels-only wrapper (:mod:`robustkit.models.access`), which every attack, the clean predictions
and the randomness probe go through, so nothing else leaks. An attack runs on the model itself
only when the access grants what it needs (``Attack.access``); one that needs more runs on the
surrogate, when the audit has one, and its adversarials are replayed on the target, one query
each (rows ``transfer:NAME``); without a surrogate it is refused, naming the attacks that fit.
The checks that need what the access withholds (the input-gradient probe, the pure-noise
probes, Square against the gradient attacks) do not run, and run.json's ``access`` says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from torch import Tensor, nn

from robustkit.access_levels import grants
from robustkit.attacks import Attack, attack_class, list_attacks
from robustkit.auditing.checks import Flag
from robustkit.auditing.plan import Plan
from robustkit.auditing.progress import module_digest
from robustkit.auditing.spec import DEFAULTS, AuditSpec
from robustkit.auditing.suites import get_suite
from robustkit.auditing.threats import Threat, Threats
from robustkit.data import DatasetInfo
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, check_classifier, is_randomized
from robustkit.models.access import restrict

TRANSFER = "transfer"  # the prefix of the rows of attacks run on the surrogate
GIVES = {"scores": "the model's scores", "labels": "the model's top-1 class"}
WITHHELD = {"scores": "gradients", "labels": "gradients and scores"}
# The checks a restricted access cannot run, and why (run.json's access.skipped_checks).
SKIPPED_CHECKS = {
    "zero-gradients": "the input-gradient probe needs gradients",
    "gradient-free-beats-gradient": "no gradient attack reaches the model to compare Square with",
    "noise-probes": "PGD from pure noise needs gradients, the pure-noise grid reads scores",
}


def fits(attack: Attack | type[Attack], access: str) -> bool:
    """Whether ``access`` gives ``attack`` what it needs of the model."""
    return grants(access, attack.access)


def attacks_for(access: str) -> list[str]:
    """The registered attacks that an audit with ``access`` runs on the model itself."""
    return [name for name in list_attacks() if fits(attack_class(name), access)]


def check_fit(
    attacks: Iterable[str | Attack], suite: str | None, access: str, *, surrogate: bool
) -> None:
    """Refuse, in one line naming what fits, an attack named (or in ``suite``) that needs more
    than ``access`` gives, when there is no surrogate to run it on."""
    if surrogate or access == "gradients":
        return
    named = [type(a) if isinstance(a, Attack) else attack_class(a) for a in attacks]
    unfit = [a for a in named if not fits(a, access)]
    fitting = ", ".join(attacks_for(access)) or "none registered"
    fix = "or add --surrogate MODEL to run them on a surrogate and replay their adversarials"
    if unfit:
        raise RobustkitError(
            f"{_needs(unfit)}: --access {access} gives {GIVES[access]} only; use {fitting} "
            f"(or --suite {access}), {fix}"
        )
    if suite is not None:
        listed = get_suite(suite)
        members = [attack_class(name) for name, _ in (*listed.linf, *listed.l2, *listed.l1)]
        unfit = [a for a in members if not fits(a, access)]
        if unfit:
            levels = " and ".join(dict.fromkeys(a.access for a in unfit))
            raise RobustkitError(
                f"--suite {suite} needs {levels}: --access {access} gives {GIVES[access]} only; "
                f"use --suite {access}, {fix}"
            )


def _needs(attacks: list[type[Attack]]) -> str:
    """'pgd-linf, fgsm need gradients; square needs scores'."""
    by_level: dict[str, list[str]] = {}
    for attack in attacks:
        by_level.setdefault(attack.access, []).append(attack.name)
    parts = []
    for level, names in by_level.items():
        unique = list(dict.fromkeys(names))
        parts.append(f"{', '.join(unique)} need{'s' if len(unique) == 1 else ''} {level}")
    return "; ".join(parts)


class BlackBoxThreats(Threats):
    """``model`` behind the ``access`` wrapper, attacked by the attacks that fit it, and (with
    a ``surrogate``) by the others run on the surrogate and replayed on it."""

    noise_probes = False  # PGD from noise needs gradients, the noise grid scores

    def __init__(
        self, model: RobustModel, access: str, surrogate: RobustModel | None = None
    ) -> None:
        super().__init__(model)
        self.level = access
        self.target = restrict(model, access)
        self.surrogate = surrogate

    @property
    def judged(self) -> nn.Module:
        return self.target

    def is_randomized(self, x: Tensor, spec: AuditSpec) -> bool:
        """Refuse a randomized model (as the attacks see it): query attacks judge one answer."""
        if spec.randomized or is_randomized(self.target, x.to(self.model.device)):
            raise RobustkitError(
                f"model {self.model.name} answers the same query differently: a black-box audit "
                f"(--access {self.level}) judges a deterministic model; audit a randomized one "
                "with --access gradients (the rand protocol)"
            )
        return False

    def protocol(self, spec: AuditSpec, randomized: bool) -> dict[str, Any]:
        """The deterministic protocol with the black-box suite; the reason says what the
        attacks see."""
        protocol = super().protocol(dataclasses.replace(spec, suite=suite_of(spec)), randomized)
        budget = (
            "on its own query budget"
            if spec.max_queries is None
            else f"held to {spec.max_queries:,} queries per point"
        )
        transfer = ""
        if self.surrogate is not None:
            transfer = (
                f"; attacks needing more run on the surrogate {self.surrogate.name} and are "
                "replayed on the model, one query per point"
            )
        return {
            **protocol,
            "name": f"black-box ({self.level})",
            "reason": (
                f"the attacks see {GIVES[self.level]} only ({WITHHELD[self.level]} withheld), "
                f"each query-based attack {budget}{transfer}; the checks needing what is "
                "withheld do not run"
            ),
        }

    def named_attacks(self, spec: AuditSpec) -> tuple[str | Attack, ...] | None:
        """The attacks named, else (with a surrogate) PGD on it for each norm with budgets."""
        if spec.attacks is not None:
            return spec.attacks
        if self.surrogate is None:
            return ()
        norms = {"linf"} if spec.budgets.linf is None or spec.budgets.linf else set()
        norms |= {"l2"} if spec.budgets.l2 else set()
        return tuple(n for n in DEFAULTS.transfer_attacks if attack_class(n).norm in norms)

    def check(self, x: Tensor) -> int:
        """The number of classes, the surrogate's checked to match the model's."""
        classes = super().check(x)
        if self.surrogate is not None:
            theirs = check_classifier(self.surrogate, x.to(self.model.device))
            if theirs != classes:
                raise RobustkitError(
                    f"the surrogate {self.surrogate.name} has {theirs} classes and the model "
                    f"{self.model.name} {classes}: give a surrogate of the same classes"
                )
        return classes

    def prepare(self, plan: Plan, protocol: dict[str, Any], info: DatasetInfo, x: Tensor) -> Plan:
        """The plan, its attacks checked to fit the access where there is no surrogate."""
        attacks = [*plan.independent, *plan.cascade]
        check_fit(attacks, None, self.level, surrogate=self.surrogate is not None)
        return plan

    def probe(self, plan: Plan, x: Tensor, y: Tensor, randomized: bool) -> list[Flag]:
        """None: the input-gradient probe needs gradients (recorded as skipped)."""
        return []

    def threats(self, protocol: dict[str, Any]) -> list[Threat]:
        name = self.model.name
        direct = Threat(None, self.target, self.target, name, adapt=self._fitting)
        if self.surrogate is None:
            return [direct]
        transfer = Threat(
            TRANSFER, self.surrogate, self.target, name, adapt=self._other, replayed=True
        )
        return [direct, transfer]

    def _fitting(self, attack: Attack) -> Attack | None:
        return attack if fits(attack, self.level) else None

    def _other(self, attack: Attack) -> Attack | None:
        return None if fits(attack, self.level) else attack

    def access(self, spec: AuditSpec) -> dict[str, Any]:
        """The access level, query budget, surrogate (name and weights digest) and the checks
        the access leaves out."""
        surrogate = None
        if self.surrogate is not None:
            surrogate = {"name": self.surrogate.name, "weights": module_digest(self.surrogate)}
        return {
            **super().access(spec),
            "surrogate": surrogate,
            "skipped_checks": [
                {"check": code, "reason": reason} for code, reason in SKIPPED_CHECKS.items()
            ],
        }


def suite_of(spec: AuditSpec) -> str | None:
    """The suite a black-box audit runs: the one named, else (no attack named) its access's."""
    return spec.suite or (spec.access if spec.attacks is None else None)


def model_threats(model: RobustModel, access: str, surrogate: RobustModel | None = None) -> Threats:
    """What an audit of ``model`` with ``access`` attacks: the model itself (gradients), or the
    model behind its access wrapper, with the surrogate's transfer attacks."""
    if access == "gradients":
        return Threats(model)
    return BlackBoxThreats(model, access, surrogate)
