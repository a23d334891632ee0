"""The audit's universal perturbations (:mod:`robustkit.attacks.universal`): one per L-inf and L2
budget of the plan, crafted on images of their own (a training split), scored on the audited
images with one row per image like any attack's, so that the worst case counts them.

Budgets stay nested as for the other attacks: the perturbation of a budget is, of those crafted
at that budget and below (all lie in its ball), the one that fools most crafting images; the
held-out images never take part in the choice.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from robustkit.attacks.base import perturbation_norm
from robustkit.attacks.universal import NORMS, Universal, UniversalPGD, apply_universal, predict
from robustkit.auditing.inputs import Batches
from robustkit.auditing.outcome import UNBROKEN, Outcome
from robustkit.auditing.perturbations import perturbation_stem
from robustkit.auditing.plan import Plan
from robustkit.auditing.rows import RowStore
from robustkit.auditing.threats import Threat
from robustkit.errors import RobustkitError
from robustkit.progress import progress_bar

METHOD = (
    "stochastic projected sign-gradient ascent on one perturbation over minibatches of the "
    "crafting images (Shafahi et al. 2020's batched crafting, PGD steps)"
)


@dataclass(frozen=True)
class UniversalJob:
    """What an audit's universal perturbations are crafted on (``images``, described by
    ``source``) and with which settings (``crafter``; its norm and seed are set per budget and
    by the audit)."""

    images: Tensor
    source: str
    crafter: UniversalPGD = field(default_factory=UniversalPGD)


@dataclass(frozen=True)
class UniversalRun:
    """The rows of every universal perturbation, the perturbations by file stem, and run.json's
    record of them."""

    frame: pd.DataFrame
    perturbations: dict[str, Tensor]
    record: dict[str, Any]


def check_universal(
    plan: Plan, protocol: dict[str, Any], threats: int, access: str = "gradients"
) -> None:
    """Refuse, before any attack runs, an audit a universal perturbation cannot join (one
    with ``access`` short of gradients: the crafting follows the model's gradients)."""
    if access != "gradients":
        raise RobustkitError(
            f"--universal crafts with the model's gradients, which --access {access} withholds: "
            "drop --universal or --access"
        )
    if protocol["eval_passes"] > 1:
        raise RobustkitError(
            "--universal scores one pass per image, which does not judge a randomized model: "
            "craft it on a deterministic copy (e.g. its noise switched off)"
        )
    if threats != 1:
        raise RobustkitError("--universal audits a plain model: drop --defense or --universal")
    if not any(norm in plan.budgets for norm in NORMS):
        raise RobustkitError(
            "--universal crafts at the audit's L-inf or L2 budgets and it has none: give an "
            "attack of either norm with --eps or --eps-l2"
        )


def run_universal(
    job: UniversalJob,
    threat: Threat,
    plan: Plan,
    batches: Batches,
    seed: int,
    *,
    progress: bool = False,
) -> UniversalRun:
    """Craft on ``threat``'s model at every L-inf and L2 budget of ``plan`` and score on every
    batch, under a progress bar of its own."""
    rows = RowStore()
    perturbations: dict[str, Tensor] = {}
    entries = []
    budgets = {norm: plan.budgets.get(norm, []) for norm in NORMS}
    with progress_bar(enabled=progress) as bar:
        task = bar.add_task("universal", total=sum(map(len, budgets.values())))
        for norm, values in budgets.items():
            crafted: list[Universal] = []
            for eps in values:
                bar.update(task, description=f"universal-{norm} eps={eps:g}")
                started = time.perf_counter()
                crafter = dataclasses.replace(job.crafter, norm=norm, seed=seed)
                crafted.append(crafter(threat.craft, job.images, eps=eps))
                chosen = max(reversed(crafted), key=lambda u: u.fooling_rate)  # ties: this eps
                counts = _score(rows, threat, crafter.name, chosen, eps, batches)
                stem = perturbation_stem(norm, eps)
                perturbations[stem] = chosen.perturbation
                entries.append(
                    {
                        "attack": crafter.name,
                        "norm": norm,
                        "eps": eps,
                        "file": f"{stem}.pt",
                        "crafted_at_eps": chosen.eps,
                        "crafting_fooling_rate": chosen.fooling_rate,
                        **counts,
                        "passes": crafted[-1].passes,
                        "time_s": round(time.perf_counter() - started, 3),
                    }
                )
                bar.advance(task)
    record = {
        "method": METHOD,
        "settings": {
            k: v for k, v in dataclasses.asdict(job.crafter).items() if k not in ("norm", "seed")
        },
        "crafting_images": len(job.images),
        "crafting_source": job.source,
        "perturbations": entries,
    }
    return UniversalRun(frame=rows.frame(), perturbations=perturbations, record=record)


def _score(
    rows: RowStore,
    threat: Threat,
    attack: str,
    universal: Universal,
    eps: float,
    batches: Batches,
) -> dict[str, Any]:
    """Rows of ``universal`` on every batch (a point misclassified clean is not attacked, as
    for every attack); the fooling rate (prediction changed) and accuracies over all images."""
    n = fooled = correct = robust = 0
    delta, model = universal.perturbation, threat.score
    for index, (x, y) in enumerate(batches.load(list(range(len(batches))))):
        clean_pred = predict(model, x, len(x))
        adv_pred = predict(model, x, len(x), delta)
        right = clean_pred == y
        outcome = Outcome.unattacked(clean_pred)
        outcome.broken = right & (adv_pred != y)
        outcome.adv_pred = torch.where(right, adv_pred, clean_pred)
        size = perturbation_norm(apply_universal(x, delta) - x, universal.norm)
        outcome.perturbation = torch.where(outcome.broken, size, float("nan"))
        outcome.broken_by = [attack if b else UNBROKEN for b in outcome.broken.tolist()]
        rows.add(
            model=threat.model_name,
            attack=attack,
            norm=universal.norm,
            eps=eps,
            samples=batches.samples(index),
            labels=y,
            clean_pred=clean_pred,
            outcome=outcome,
        )
        n += len(y)
        fooled += int((adv_pred != clean_pred).sum())
        correct += int((adv_pred == y).sum())
        robust += int((right & (adv_pred == y)).sum())
    return {
        "n": n,
        "fooling_rate": fooled / n,
        "accuracy": correct / n,
        "robust_accuracy": robust / n,
    }
