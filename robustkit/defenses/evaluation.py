"""audit_defense: a defended model against oblivious, BPDA and BPDA + EOT attacks, side by side.

The defended model's robust accuracy is the worst case over these families (and the latent-space
family when a generator-searching attack runs), never the oblivious attack alone. Each family is a
:class:`~robustkit.auditing.engine.Threat` of the one audit engine.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from robustkit.attacks import Attack
from robustkit.auditing.engine import engine_manifest, run_engine
from robustkit.auditing.inputs import Batches, resolve_data, resolve_model
from robustkit.auditing.plan import plan_audit
from robustkit.auditing.probes import probe_model
from robustkit.auditing.progress import dataset_digest, module_digest, open_progress
from robustkit.auditing.results import AuditResult
from robustkit.auditing.threats import FAMILIES, LATENT, Threat
from robustkit.data import DatasetInfo, indices_record
from robustkit.defenses.adaptive import EOT
from robustkit.defenses.estimate import estimate_defense_cost, time_projection
from robustkit.models import RobustModel, check_classifier

log = logging.getLogger(__name__)

DEFENSE_ATTACKS = ("latent-overpowered",)  # what `robustkit audit --defense` adds to the defaults
DEFENSE_PROBE_SIZE = 8  # inputs whose gradients through the defense the model probe checks


def audit_defense(
    classifier: str | nn.Module,
    defense: nn.Module,
    data: str | DatasetInfo | Dataset | tuple[Tensor, Tensor] = "mnist-sample",
    *,
    attacks: Iterable[str | Attack] | None = ("pgd-linf",),
    suite: str | None = None,
    eps: Sequence[float] = (0.3,),
    eps_l2: Sequence[float] | None = None,
    sigmas: Sequence[float] | None = None,
    eps_l1: Sequence[float] | None = None,
    steps: int | None = None,
    restarts: int | None = None,
    eot_samples: int = 8,
    num_samples: int | None = None,
    indices: Sequence[int] | Tensor | None = None,
    batch_size: int = 100,
    seed: int = 0,
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
    on the defense like the others. A ``suite`` runs as a cascade inside every family.

    Every adversarial is scored by one fresh forward pass of the defense, as deployed. Against a
    randomized defense the adaptive attacks run all their steps: early stop would judge success
    on one random pass and keep a weak iterate. The frame also holds the bare classifier's rows
    (attack ``NAME``, model = the classifier's name). The same engine as :func:`audit` runs it,
    with the same ``progress_dir``, ``resume`` and images (``num_samples`` or ``indices``; the
    rows' ``sample`` is each image's dataset index).
    """
    started = time.perf_counter()
    torch.manual_seed(seed)
    robust_model = resolve_model(classifier, None)
    defense = defense.to(robust_model.device)
    info = resolve_data(data, num_samples, seed, model=robust_model, indices=indices)
    plan = plan_audit(
        attacks,
        suite,
        steps=steps,
        restarts=restarts,
        eps=eps,
        eps_l2=eps_l2,
        sigmas=sigmas,
        eps_l1=eps_l1,
    )
    plan = dataclasses.replace(
        plan,
        independent=[_with_generator(a, defense) for a in plan.independent],
        cascade=[_with_generator(a, defense) for a in plan.cascade],
    )
    batches = Batches(info, batch_size)
    first_x, first_y = batches.first()
    check_classifier(robust_model, first_x[:2].to(robust_model.device))
    check_classifier(defense, first_x[:2].to(robust_model.device))
    # A defense's forward pass is a whole projection: probe its gradients on a few inputs only.
    probe_x, probe_y = first_x[:DEFENSE_PROBE_SIZE], first_y[:DEFENSE_PROBE_SIZE]
    model_flags = probe_model(defense, probe_x.to(robust_model.device), probe_y, eot=True)
    cost = estimate_defense_cost(
        [*plan.independent, *plan.cascade],
        budgets=plan.budgets,
        num_samples=len(info.dataset),  # type: ignore[arg-type]
        eot_samples=eot_samples,
        seconds_per_projection=time_projection(defense, probe_x.to(robust_model.device)),
    )
    log.info(cost.describe())
    randomized = bool(getattr(defense, "is_randomized", False))
    threats = _threats(robust_model, defense, eot_samples, randomized)
    manifest = {
        **_manifest(robust_model, defense, info, eot_samples),
        **engine_manifest(plan, batch_size, seed),
    }
    with open_progress(progress_dir, manifest, resume=resume) as store:
        run = run_engine(plan, threats, batches, store, seed=seed, progress=progress)
    attacks_run = [*plan.independent, *plan.cascade]
    config = {
        "model": _name(defense),
        "classifier": robust_model.name,
        "dataset": info.name,
        "num_samples": run.num_samples,
        **indices_record(info),
        "suite": plan.suite,
        "attacks": plan.describe(),
        "families": [*FAMILIES, *([LATENT] if any(a.needs_generator for a in attacks_run) else [])],
        "eot_samples": eot_samples,
        "adaptive_early_stop": not randomized,
        "budgets": plan.budgets,
        "batch_size": batch_size,
        "seed": seed,
        "device": str(robust_model.device),
        "model_checks": [dataclasses.asdict(flag) for flag in model_flags],
        "eps_probes": run.eps_probes,
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    return AuditResult(frame=run.frame, config=config, examples=run.examples)


def _manifest(
    classifier: RobustModel, defense: nn.Module, info: DatasetInfo, eot_samples: int
) -> dict[str, Any]:
    """What decides a defense audit's numbers beside the engine's settings (for resuming)."""
    return {
        "classifier": classifier.name,
        "classifier_weights": module_digest(classifier),
        "defense": _name(defense),
        "defense_weights": module_digest(defense),
        "projection": repr(getattr(defense, "projection", None)),
        "execution": dataclasses.asdict(classifier.execution),
        "outputs": dataclasses.asdict(classifier.outputs),
        "eot_samples": eot_samples,
        "dataset": info.name,
        "samples": dataset_digest(info.dataset),
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
