"""audit_defense: a defended model against oblivious, BPDA and BPDA + EOT attacks, side by side.

The defended model's robust accuracy is the worst case over these families (and the latent-space
family when a generator-searching attack runs), never the oblivious attack alone. The undefended
classifier's rows come for free: the oblivious adversarials are the attack on the bare classifier.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from robustkit.attacks import Attack, GradientAttack
from robustkit.data import DatasetInfo
from robustkit.defenses.adaptive import EOT
from robustkit.evaluate import (
    DEFAULT_BUDGETS,
    batch_loader,
    plan_attacks,
    progress_bar,
    resolve_data,
    resolve_model,
)
from robustkit.models import check_classifier
from robustkit.results import ROW_COLUMNS, AuditResult

FAMILIES = ("oblivious", "bpda", "bpda-eot")
LATENT = "latent"  # the family of attacks in a generator's latent space
DEFENSE_ATTACKS = ("latent-overpowered",)  # what `robustkit audit --defense` adds to the defaults


def audit_defense(
    classifier: str | nn.Module,
    defense: nn.Module,
    data: str | DatasetInfo | Dataset | tuple[Tensor, Tensor] = "mnist-sample",
    *,
    attacks: Iterable[str | Attack] = ("pgd-linf",),
    eps: Sequence[float] = (0.3,),
    eps_l2: Sequence[float] = DEFAULT_BUDGETS["l2"],
    sigmas: Sequence[float] = DEFAULT_BUDGETS["gaussian"],
    steps: int | None = None,
    restarts: int | None = None,
    eot_samples: int = 8,
    num_samples: int | None = None,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = False,
) -> AuditResult:
    """Attack ``defense`` (built around ``classifier``) with every attack in three families.

    * ``oblivious:NAME``: adversarials crafted on the bare classifier, fed to the defense;
    * ``bpda:NAME``: the attack run on the defense itself, through its BPDA backward;
    * ``bpda-eot:NAME``: the attack run on ``EOT(defense, eot_samples)``.

    An attack that searches a generator's range (``latent-overpowered``) is one family of its
    own, ``latent:NAME``: it gets the defense's generator, searches on the bare classifier (its
    adversarials lie near the range, which the projection leaves nearly unchanged) and is scored
    on the defense like the others.

    Every adversarial is scored by one fresh forward pass of the defense, as deployed. Against a
    randomized defense the adaptive attacks run all their steps: early stop would judge success
    on one random pass and keep a weak iterate. The frame also holds the bare classifier's rows
    (attack ``NAME``, model = the classifier's name).
    """
    started = time.perf_counter()
    torch.manual_seed(seed)
    robust_model = resolve_model(classifier, None)
    defense = defense.to(robust_model.device)
    info = resolve_data(data, num_samples, seed)
    attack_list, budgets = plan_attacks(
        attacks, steps=steps, restarts=restarts, eps=eps, eps_l2=eps_l2, sigmas=sigmas
    )
    loader = batch_loader(info, batch_size)
    first = next(iter(loader))[0][:2].to(robust_model.device)
    check_classifier(robust_model, first)
    check_classifier(defense, first)
    eot = EOT(defense, samples=eot_samples)
    randomized = bool(getattr(defense, "is_randomized", False))
    defense_name = getattr(defense, "name", type(defense).__name__)

    attack_list = [_with_generator(attack, defense) for attack in attack_list]
    jobs = [
        (attack, _all_steps(attack) if randomized else attack, budget)
        for attack in attack_list
        for budget in budgets[attack.norm]
    ]
    stores: dict[tuple[str, str, str, float], dict[str, list[Any]]] = {}
    with progress_bar(progress) as bar:
        task = bar.add_task("attacking", total=len(jobs) * len(loader))
        offset = 0
        for x, y in loader:
            x, y = x.to(robust_model.device), y.to(robust_model.device)
            bare_pred, defended_pred = _predict(robust_model, x), _predict(defense, x)
            ok = defended_pred == y
            for attack, adaptive, budget in jobs:
                bar.update(task, description=f"{attack.name} eps={budget:g}")
                oblivious = attack(robust_model, x, y, eps=budget)
                bare_adv = torch.where(bare_pred == y, oblivious.adv_pred, bare_pred)
                rows = _store(stores, robust_model.name, attack.name, attack.norm, budget)
                _append(rows, offset, y, bare_pred, bare_adv)
                targets = {"bpda": defense, "bpda-eot": eot}
                for family in (LATENT,) if attack.needs_generator else FAMILIES:
                    adv_pred = defended_pred.clone()
                    if ok.any():
                        if family in ("oblivious", LATENT):
                            x_adv = oblivious.x_adv[ok]
                        else:
                            x_adv = adaptive(targets[family], x[ok], y[ok], eps=budget).x_adv
                        adv_pred[ok] = _predict(defense, x_adv)
                    name = f"{family}:{attack.name}"
                    rows = _store(stores, defense_name, name, attack.norm, budget)
                    _append(rows, offset, y, defended_pred, adv_pred)
                bar.advance(task)
            offset += len(y)

    frame = pd.concat(
        [
            pd.DataFrame(columns).assign(model=key[0], attack=key[1], norm=key[2], eps=key[3])
            for key, columns in stores.items()
        ],
        ignore_index=True,
    )
    frame["clean_correct"] = frame["clean_pred"] == frame["label"]
    frame["robust_correct"] = frame["adv_pred"] == frame["label"]
    frame = frame[ROW_COLUMNS]
    config = {
        "model": defense_name,
        "classifier": robust_model.name,
        "dataset": info.name,
        "num_samples": offset,
        "attacks": [a.describe() for a in attack_list],
        "families": [*FAMILIES, *([LATENT] if any(a.needs_generator for a in attack_list) else [])],
        "eot_samples": eot_samples,
        "adaptive_early_stop": not randomized,
        "budgets": {norm: list(values) for norm, values in budgets.items()},
        "batch_size": batch_size,
        "seed": seed,
        "device": str(robust_model.device),
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    return AuditResult(frame=frame, config=config)


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor) -> Tensor:
    """One forward pass's predicted classes."""
    return model(x).argmax(dim=1)


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
    if isinstance(attack, GradientAttack) and attack.early_stop:
        return dataclasses.replace(attack, early_stop=False)
    return attack


def _store(
    stores: dict[tuple[str, str, str, float], dict[str, list[Any]]],
    model: str,
    attack: str,
    norm: str,
    eps: float,
) -> dict[str, list[Any]]:
    """The column store of one (model, attack, norm, eps), kept in first-seen order."""
    return stores.setdefault(
        (model, attack, norm, eps),
        {"sample": [], "label": [], "clean_pred": [], "adv_pred": []},
    )


def _append(
    columns: dict[str, list[Any]], offset: int, labels: Tensor, clean: Tensor, adv: Tensor
) -> None:
    columns["sample"] += range(offset, offset + len(labels))
    columns["label"] += labels.tolist()
    columns["clean_pred"] += clean.tolist()
    columns["adv_pred"] += adv.tolist()
