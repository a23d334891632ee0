"""Threats: how each family of attacks reaches the model (what the attack runs on, what scores
it), and :class:`Threats`, what one audit attacks: a plain model here; a defense audit's
(:class:`robustkit.defenses.evaluation.DefenseThreats`) adds the oblivious, BPDA, EOT and latent
families. The threats are the only difference between a model audit and a defense audit: both
run :func:`robustkit.auditing.engine.run_audit` on an :class:`~robustkit.auditing.spec.AuditSpec`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from robustkit.attacks import Attack
from robustkit.auditing.checks import Flag
from robustkit.auditing.inputs import describe_model
from robustkit.auditing.plan import Plan
from robustkit.auditing.probes import probe_model
from robustkit.auditing.progress import module_digest
from robustkit.auditing.protocol import choose_protocol, uses_eot
from robustkit.auditing.spec import AuditSpec
from robustkit.data import DatasetInfo
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, check_classifier, check_deterministic, is_randomized


@dataclass(frozen=True)
class Threat:
    """How one family of attacks reaches the model: the module the attacks run on (``craft``) and
    the one whose prediction decides success (``score``). A plain audit has one threat with both
    the model itself; a defense audit adds oblivious, BPDA and EOT threats. ``replayed``: the
    adversarials come from another model (a black-box audit's surrogate), each costing the
    scoring model one query."""

    prefix: str | None
    craft: nn.Module
    score: nn.Module
    model_name: str
    adapt: Callable[[Attack], Attack | None] = lambda attack: attack  # None: not in this family
    replayed: bool = False

    def label(self, attack: Attack) -> str:
        return f"{self.prefix}:{attack.name}" if self.prefix else attack.name

    def attacks(self, attacks: Iterable[Attack], norm: str) -> list[Attack]:
        """The attacks of ``norm`` this family runs, as it runs them."""
        adapted = (self.adapt(a) for a in attacks if a.norm == norm)
        return [a for a in adapted if a is not None]


class Threats:
    """What an audit attacks, and through which threats: here the model itself, one threat.

    ``model`` is the classifier the data follow (classes, input size); ``judged`` the module
    whose answers the audit's probes look at. Each step of :func:`run_audit` that depends on
    what is attacked asks this object; a defense audit overrides them."""

    noise_probes = True  # whether the pure-noise probes run on this model
    level = "gradients"  # what the attacks may ask of the model (robustkit.access_levels)

    def __init__(self, model: RobustModel) -> None:
        self.model = model

    @property
    def judged(self) -> nn.Module:
        return self.model

    def check(self, x: Tensor) -> int:
        """The number of classes, after checking the model's output on ``x``."""
        return check_classifier(self.model, x.to(self.model.device))

    def is_randomized(self, x: Tensor, spec: AuditSpec) -> bool:
        """The randomness probe's verdict (refused when the spec says the model must not be)."""
        x = x.to(self.model.device)
        if spec.randomized is False:
            check_deterministic(self.model, x)
            return False
        return is_randomized(self.model, x)

    def protocol(self, spec: AuditSpec, randomized: bool) -> dict[str, Any]:
        """The protocol a randomized or deterministic model gets (:func:`choose_protocol`)."""
        if randomized and spec.corruptions is not None:
            raise RobustkitError(
                "--corruptions scores one pass per image, which does not judge a randomized "
                "model: audit its corruptions on a deterministic copy (e.g. its noise switched off)"
            )
        return choose_protocol(
            randomized,
            attacks=spec.attacks,
            suite=spec.suite,
            eot_samples=spec.eot_samples,
            eval_passes=spec.eval_passes,
        )

    def named_attacks(self, spec: AuditSpec) -> tuple[str | Attack, ...] | None:
        """The attacks the plan runs alone (None: the diagnostics)."""
        return spec.attacks

    def access(self, spec: AuditSpec) -> dict[str, Any]:
        """What the attacks may ask of the model, for the manifest and run.json, and the cap of
        the query-based attacks (``spec.max_queries``)."""
        return {
            "level": self.level,
            "max_queries": spec.max_queries,
            "surrogate": None,
            "skipped_checks": [],
        }

    def attack_passes(self, protocol: dict[str, Any]) -> dict[str, int]:
        """The pass counts the attacks themselves take: the protocol's EOT and judging passes."""
        return {"eot_samples": protocol["eot_samples"], "eval_passes": protocol["eval_passes"]}

    def prepare(self, plan: Plan, protocol: dict[str, Any], info: DatasetInfo, x: Tensor) -> Plan:
        """The plan as these threats run it (a defense gives its generator to latent attacks)."""
        return plan

    def probe(self, plan: Plan, x: Tensor, y: Tensor, randomized: bool) -> list[Flag]:
        """The model probe's flags on the first batch (masked gradients, missing EOT)."""
        return probe_model(
            self.model, x.to(self.model.device), y, eot=uses_eot(plan), randomized=randomized
        )

    def threats(self, protocol: dict[str, Any]) -> list[Threat]:
        return [Threat(None, self.model, self.model, self.model.name)]

    def record(self, protocol: dict[str, Any]) -> dict[str, Any]:
        """Who is attacked, for the manifest and run.json: name, weights digest, execution and
        outputs."""
        return {
            "model": self.model.name,
            "weights": module_digest(self.model),
            "execution": dataclasses.asdict(self.model.execution),
            "outputs": dataclasses.asdict(self.model.outputs),
        }

    def describe(self, plan: Plan, protocol: dict[str, Any]) -> dict[str, Any]:
        """What run.json says of the model beside the common fields."""
        return {"model_info": describe_model(self.model)}
