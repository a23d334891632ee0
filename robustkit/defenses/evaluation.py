"""audit_defense: a defended model against oblivious, BPDA and BPDA + EOT attacks, side by side.

The defended model's robust accuracy is the worst case over these families (and the latent-space
family when a generator-searching attack runs), never the oblivious attack alone. Each family is a
:class:`~robustkit.auditing.engine.Threat` of the one audit engine.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torch.utils.data import Dataset

from robustkit.attacks import Attack
from robustkit.auditing.checks import Flag
from robustkit.auditing.engine import budgets, execution_of, listed, run_audit
from robustkit.auditing.families import FAMILIES, LATENT
from robustkit.auditing.inputs import describe_model, resolve_data, resolve_model
from robustkit.auditing.plan import Plan
from robustkit.auditing.probes import probe_model
from robustkit.auditing.progress import module_digest
from robustkit.auditing.results import AuditResult
from robustkit.auditing.spec import DEFAULTS, AuditSpec
from robustkit.auditing.threats import Threat, Threats
from robustkit.data import DatasetInfo
from robustkit.defenses.adaptive import EOT
from robustkit.defenses.estimate import estimate_defense_cost, time_projection
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, check_classifier

log = logging.getLogger(__name__)

DEFENSE_PROBE_SIZE = 8  # inputs whose gradients through the defense the model probe checks


def audit_defense(
    classifier: str | nn.Module,
    defense: nn.Module,
    data: str | DatasetInfo | Dataset | tuple[Tensor, Tensor] = DEFAULTS.dataset,
    *,
    attacks: Iterable[str | Attack] | None = None,
    suite: str | None = None,
    eps: Sequence[float] = DEFAULTS.eps,
    eps_l2: Sequence[float] | None = None,
    sigmas: Sequence[float] | None = None,
    eps_l1: Sequence[float] | None = None,
    steps: int | None = None,
    restarts: int | None = None,
    eot_samples: int = DEFAULTS.defense_eot_samples,
    num_samples: int | None = None,
    indices: Sequence[int] | Tensor | None = None,
    batch_size: int = DEFAULTS.batch_size,
    seed: int = DEFAULTS.seed,
    progress: bool = False,
    progress_dir: str | Path | None = None,
    resume: bool = False,
) -> AuditResult:
    """Attack ``defense`` (built around ``classifier``) with every attack in three families.

    * ``oblivious:NAME``: adversarials crafted on the bare classifier, fed to the defense;
    * ``bpda:NAME``: the attack run on the defense itself, through its BPDA backward;
    * ``bpda-eot:NAME``: the attack run on ``EOT(defense, eot_samples)``.

    An attack that searches a generator's range (``latent-overpowered``) is one family of its
    own, ``latent:NAME``: it gets the defense's generator, searches on the bare classifier (its
    adversarials lie near the range, which the projection leaves nearly unchanged) and is scored
    on the defense like the others. A ``suite`` runs as a cascade inside every family; without
    ``attacks``, the diagnostics and ``latent-overpowered`` run. Every adversarial is scored by
    one fresh pass of the defense; against a randomized one the adaptive attacks run all their
    steps. The frame also holds the bare classifier's rows (model = the classifier's name). The
    spec, defaults and engine are :func:`~robustkit.auditing.engine.audit`'s.
    """
    robust_model = resolve_model(classifier, None)
    info = resolve_data(data, None, seed, model=robust_model)
    spec = AuditSpec(
        model=_name(defense),
        dataset=info.name,
        num_samples=num_samples,
        indices=listed(indices),
        attacks=defense_attacks(attacks),
        suite=suite,
        steps=steps,
        restarts=restarts,
        budgets=budgets(eps, eps_l2, eps_l1, sigmas),
        batch_size=batch_size,
        seed=seed,
        **execution_of(robust_model),
        eot_samples=eot_samples,
        noise_probes="off",
    )
    threats = DefenseThreats(robust_model, defense.to(robust_model.device))
    return run_audit(
        spec, threats, info, progress=progress, progress_dir=progress_dir, resume=resume
    )


def defense_attacks(attacks: Iterable[str | Attack] | None) -> tuple[str | Attack, ...]:
    """The attacks of a defense audit: those named, else the diagnostics and the latent attack."""
    if attacks is None:
        return (*DEFAULTS.diagnostics, *DEFAULTS.defense_attacks)
    return tuple(attacks)


class DefenseThreats(Threats):
    """A defense around ``model``: the bare classifier, then the defense attacked obliviously,
    through BPDA, through BPDA with EOT, and in the generator's latent space. The defense's
    randomness is declared (``is_randomized``), EOT is a threat of its own and every adversarial
    is scored by one fresh pass of the defense."""

    noise_probes = False  # every pass of the defense is a whole projection

    def __init__(self, model: RobustModel, defense: nn.Module) -> None:
        super().__init__(model)
        self.defense = defense

    @property
    def judged(self) -> nn.Module:
        return self.defense

    def check(self, x: Tensor) -> int:
        classes = super().check(x)
        check_classifier(self.defense, x.to(self.model.device))
        return classes

    def is_randomized(self, x: Tensor, spec: AuditSpec) -> bool:
        return bool(getattr(self.defense, "is_randomized", False))

    def protocol(self, spec: AuditSpec, randomized: bool) -> dict[str, Any]:
        if spec.corruptions is not None:
            raise RobustkitError("corruptions audit a plain model: drop them or the defense")
        eot = spec.eot_samples or DEFAULTS.defense_eot_samples
        return {
            "name": "defense",
            "randomized": randomized,
            "suite": spec.suite,
            "eot_samples": eot,
            "eval_passes": 1,
            "reason": (
                f"a defense: attacked obliviously, through BPDA and through BPDA with EOT over "
                f"{eot} passes; every adversarial is scored by one fresh pass of the defense"
            ),
        }

    def attack_passes(self, protocol: dict[str, Any]) -> dict[str, int]:
        """None: EOT is a threat of its own here, and one fresh pass of the defense scores."""
        return {"eot_samples": 1, "eval_passes": 1}

    def prepare(self, plan: Plan, protocol: dict[str, Any], info: DatasetInfo, x: Tensor) -> Plan:
        """Latent attacks get the defense's generator; the cost of the projections ahead is
        logged before they start."""
        plan = dataclasses.replace(
            plan,
            independent=[_with_generator(a, self.defense) for a in plan.independent],
            cascade=[_with_generator(a, self.defense) for a in plan.cascade],
        )
        probe_x = x[:DEFENSE_PROBE_SIZE].to(self.model.device)
        cost = estimate_defense_cost(
            [*plan.independent, *plan.cascade],
            budgets=plan.budgets,
            num_samples=len(info.dataset),  # type: ignore[arg-type]
            eot_samples=protocol["eot_samples"],
            seconds_per_projection=time_projection(self.defense, probe_x),
        )
        log.info(cost.describe())
        return plan

    def probe(self, plan: Plan, x: Tensor, y: Tensor, randomized: bool) -> list[Flag]:
        """A defense's forward pass is a whole projection: its gradients are probed on a few
        inputs only."""
        probe_x = x[:DEFENSE_PROBE_SIZE].to(self.model.device)
        return probe_model(self.defense, probe_x, y[:DEFENSE_PROBE_SIZE], eot=True)

    def threats(self, protocol: dict[str, Any]) -> list[Threat]:
        return _threats(self.model, self.defense, protocol["eot_samples"], protocol["randomized"])

    def record(self, protocol: dict[str, Any]) -> dict[str, Any]:
        return {
            **super().record(protocol),
            "model": _name(self.defense),
            "weights": module_digest(self.defense),
            "classifier": self.model.name,
            "classifier_weights": module_digest(self.model),
            "projection": repr(getattr(self.defense, "projection", None)),
        }

    def describe(self, plan: Plan, protocol: dict[str, Any]) -> dict[str, Any]:
        attacks = [*plan.independent, *plan.cascade]
        latent = [LATENT] if any(a.needs_generator for a in attacks) else []
        return {
            "model_info": describe_model(self.model),
            "families": [*FAMILIES, *latent],
            "adaptive_early_stop": not protocol["randomized"],
        }


def _threats(
    classifier: RobustModel, defense: nn.Module, eot_samples: int, randomized: bool
) -> list[Threat]:
    """The bare classifier, then the defense attacked obliviously, through BPDA, through BPDA
    with EOT, and in the generator's latent space."""
    name = _name(defense)

    def pixel(attack: Attack) -> Attack | None:
        return None if attack.needs_generator else attack

    def adaptive(attack: Attack) -> Attack | None:
        return None if attack.needs_generator else _all_steps(attack) if randomized else attack

    def latent(attack: Attack) -> Attack | None:
        return attack if attack.needs_generator else None

    return [
        Threat(None, classifier, classifier, classifier.name),
        Threat("oblivious", classifier, defense, name, adapt=pixel),
        Threat("bpda", defense, defense, name, adapt=adaptive),
        Threat("bpda-eot", EOT(defense, samples=eot_samples), defense, name, adapt=adaptive),
        Threat(LATENT, classifier, defense, name, adapt=latent),
    ]


def _name(defense: nn.Module) -> str:
    return str(getattr(defense, "name", type(defense).__name__))


def _with_generator(attack: Attack, defense: nn.Module) -> Attack:
    """A latent-space attack given the defense's generator unless it brought its own."""
    if not attack.needs_generator or getattr(attack, "generator", None) is not None:
        return attack
    generator = getattr(defense, "generator", None)
    if generator is None:
        return attack  # the attack itself names the fix
    changes: dict[str, Any] = {"generator": generator}
    return dataclasses.replace(attack, **changes)


def _all_steps(attack: Attack) -> Attack:
    """The attack without early stop, where it has one."""
    if getattr(attack, "early_stop", False):
        changes: dict[str, Any] = {"early_stop": False}
        return dataclasses.replace(attack, **changes)
    return attack
