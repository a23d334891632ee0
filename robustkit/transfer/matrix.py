"""Transferability matrices (Papernot et al. 2016): adversarials crafted on each source model,
replayed on every target model.

Each source's adversarials are crafted once; each target classifies the clean images and every
source's adversarials in one pass. Cell (s, t) is the share of s's adversarials that t
misclassifies, over the samples both s and t classify correctly (``conditioned=True``) or over
all samples (``conditioned=False``). The diagonal is the white-box success rate.

A universal perturbation crafted on each source (:mod:`robustkit.attacks.universal`, on images of
its own) adds a row ``universal:SOURCE``: the same cells for the images plus that one
perturbation, and per target its fooling rate (prediction changed) and accuracy.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from robustkit.attacks import Attack
from robustkit.attacks.universal import NORMS as UNIVERSAL_NORMS
from robustkit.attacks.universal import Universal, apply_universal
from robustkit.auditing.inputs import build_attack
from robustkit.auditing.universal import UniversalJob
from robustkit.data import DatasetInfo, dataset_tensors
from robustkit.errors import RobustkitError
from robustkit.models import check_classifier
from robustkit.models.wrapper import device_of
from robustkit.transfer.result import COLUMNS, UNIVERSAL_COLUMNS, TransferResult

Models = Mapping[str, nn.Module] | Sequence[nn.Module]
Progress = Callable[[str, int, int], None]
"""Called as (source name, batches crafted, batches in all) while crafting."""


UNIVERSAL_ROW = "universal:"  # the matrix row of the universal perturbation crafted on a source


@dataclass(frozen=True)
class _Crafted:
    """One set of adversarials replayed on the targets: the matrix ``row`` it fills, the
    ``source`` it was crafted on (whose clean accuracy conditions the cells), the attack, the
    images, the time crafting took and, for a universal perturbation, its crafting result."""

    row: str
    source: str
    attack: str
    images: Tensor
    seconds: float
    universal: Universal | None = None


def transfer_matrix(
    sources: Models,
    targets: Models,
    data: DatasetInfo | tuple[Tensor, Tensor],
    *,
    attack: str | Attack = "pgd-linf",
    eps: float = 0.3,
    steps: int | None = None,
    early_stop: bool = False,
    batch_size: int = 500,
    seed: int = 0,
    on_progress: Progress | None = None,
    universal: UniversalJob | None = None,
) -> TransferResult:
    """Craft adversarials on every source once and score them on every target.

    A named attack runs every step (``early_stop=False``): adversarials that stop at the first
    success sit on the source's decision boundary and transfer poorly. With ``universal``, each
    source also crafts a universal perturbation of the attack's norm within ``eps`` on its
    images (the rows ``universal:SOURCE``; per target, :attr:`TransferResult.universal`).
    """
    started = time.perf_counter()
    source_models, target_models = _check_names(sources, targets)
    attack_obj = build_attack(attack, steps=steps, early_stop=early_stop)
    _check_settings(attack_obj, batch_size, universal)
    x, y = data_tensors(data)
    _check_models(source_models, target_models, x)
    crafted = _craft_all(source_models, attack_obj, x, y, eps, batch_size, seed, on_progress)
    if universal is not None:
        crafter = dataclasses.replace(universal.crafter, norm=attack_obj.norm, seed=seed)
        universal = dataclasses.replace(universal, crafter=crafter)
        crafted += _universal_all(source_models, universal, x, eps, on_progress)
    evaluate: dict[str, float] = {}
    preds = _replay(source_models, target_models, x, crafted, batch_size, evaluate)
    clean_correct = {name: pred[0] == y for name, pred in preds.items()}
    config = {
        "sources": list(source_models),
        "targets": list(target_models),
        "attack": dataclasses.asdict(attack_obj) | {"name": attack_obj.name},
        "eps": eps,
        "num_samples": len(x),
        "clean_accuracy": {k: v.float().mean().item() for k, v in clean_correct.items()},
        "seed": seed,
        "timings_s": {"craft": {c.row: c.seconds for c in crafted}, "evaluate": evaluate},
    }
    rows = _rows(crafted, target_models, preds, clean_correct, y, eps)
    result = TransferResult(frame=pd.DataFrame(rows, columns=COLUMNS), config=config)
    if universal is not None:
        _add_universal(result, universal, crafted, target_models, preds, y, eps)
    config["wall_time_s"] = time.perf_counter() - started
    return result


def _check_names(sources: Models, targets: Models) -> tuple[dict[str, nn.Module], ...]:
    """The sources and targets by name; a name both use must be the same model."""
    source_models, target_models = _named(sources, "source"), _named(targets, "target")
    for name in source_models.keys() & target_models.keys():
        if source_models[name] is not target_models[name]:
            raise RobustkitError(f"source and target {name!r} are different models: rename one")
    return source_models, target_models


def _check_settings(attack: Attack, batch_size: int, universal: UniversalJob | None) -> None:
    if batch_size < 1:
        raise RobustkitError(f"batch size must be >= 1, got {batch_size}")
    if universal is not None and attack.norm not in UNIVERSAL_NORMS:
        raise RobustkitError(
            f"a universal perturbation is L-inf or L2 and {attack.name} is {attack.norm}: pick "
            "an attack of either norm for --universal"
        )


def _check_models(sources: dict[str, nn.Module], targets: dict[str, nn.Module], x: Tensor) -> None:
    """Every model takes the data's shape and returns logits; every source has gradients."""
    for name, model in {**sources, **targets}.items():
        _check_model(name, model, x)
    for name, model in sources.items():
        _check_differentiable(name, model, x)


def _craft_all(
    sources: dict[str, nn.Module],
    attack: Attack,
    x: Tensor,
    y: Tensor,
    eps: float,
    batch_size: int,
    seed: int,
    on_progress: Progress | None,
) -> list[_Crafted]:
    """Each source's adversarials, every source from the same seed."""
    crafted = []
    for name, model in sources.items():
        tick = time.perf_counter()
        torch.manual_seed(seed)
        images = _craft(name, model, attack, x, y, eps, batch_size, on_progress)
        crafted.append(_Crafted(name, name, attack.name, images, time.perf_counter() - tick))
    return crafted


def _universal_all(
    sources: dict[str, nn.Module],
    job: UniversalJob,
    x: Tensor,
    eps: float,
    on_progress: Progress | None,
) -> list[_Crafted]:
    """Each source's universal perturbation, crafted on the job's images, added to ``x``."""
    crafted = []
    for name, model in sources.items():
        row = f"{UNIVERSAL_ROW}{name}"
        tick = time.perf_counter()
        found = job.crafter(model, job.images, eps=eps)
        if on_progress is not None:
            on_progress(row, 1, 1)
        images = apply_universal(x, found.perturbation)
        seconds = time.perf_counter() - tick
        crafted.append(_Crafted(row, name, job.crafter.name, images, seconds, found))
    return crafted


def _replay(
    sources: dict[str, nn.Module],
    targets: dict[str, nn.Module],
    x: Tensor,
    crafted: list[_Crafted],
    batch_size: int,
    timings: dict[str, float],
) -> dict[str, Tensor]:
    """Per model, its predictions (rows: the clean images, then each crafted set for a target;
    the clean images only for a source that is no target), each model's time in ``timings``."""
    replay = torch.cat([x, *(c.images for c in crafted)])
    preds = {}
    for name, model in {**targets, **sources}.items():
        tick = time.perf_counter()
        inputs = replay if name in targets else x
        preds[name] = _predict(model, inputs, batch_size).view(-1, len(x))
        timings[name] = time.perf_counter() - tick
    return preds


def _rows(
    crafted: list[_Crafted],
    targets: dict[str, nn.Module],
    preds: dict[str, Tensor],
    clean_correct: dict[str, Tensor],
    y: Tensor,
    eps: float,
) -> list[tuple[Any, ...]]:
    """Two rows per cell: the success rate over the samples source and target both classify
    correctly (conditioned), and over all samples."""
    rows = []
    for index, crafted_set in enumerate(crafted, start=1):
        for t_name in targets:
            hits = preds[t_name][index] != y
            both = clean_correct[crafted_set.source] & clean_correct[t_name]
            for conditioned, mask in ((True, both), (False, torch.ones_like(both))):
                n = int(mask.sum())
                rate = hits[mask].float().mean().item() if n else float("nan")
                rows.append(
                    (crafted_set.row, t_name, eps, crafted_set.attack, n, rate, conditioned)
                )
    return rows


def _add_universal(
    result: TransferResult,
    job: UniversalJob,
    crafted: list[_Crafted],
    targets: dict[str, nn.Module],
    preds: dict[str, Tensor],
    y: Tensor,
    eps: float,
) -> None:
    """The universal rows' fooling rate and accuracy per target, their perturbations and how
    they were crafted."""
    rows, perturbations, record = [], {}, {}
    for index, crafted_set in enumerate(crafted, start=1):
        found = crafted_set.universal
        if found is None:
            continue
        perturbations[crafted_set.source] = found.perturbation
        record[crafted_set.source] = {"fooling_rate": found.fooling_rate, "passes": found.passes}
        for t_name in targets:
            clean, perturbed = preds[t_name][0], preds[t_name][index]
            fooled = int((perturbed != clean).sum()) / len(y)
            accuracy = int((perturbed == y).sum()) / len(y)
            clean_accuracy = int((clean == y).sum()) / len(y)
            rows.append(
                (
                    crafted_set.source,
                    t_name,
                    found.norm,
                    eps,
                    len(y),
                    fooled,
                    clean_accuracy,
                    accuracy,
                )
            )
    result.universal = pd.DataFrame(rows, columns=UNIVERSAL_COLUMNS)
    result.perturbations = perturbations
    result.config["universal"] = {
        "crafting_images": len(job.images),
        "crafting_source": job.source,
        "settings": dataclasses.asdict(job.crafter) | {"name": job.crafter.name},
        "crafting": record,
    }


def _named(models: Models, role: str) -> dict[str, nn.Module]:
    if isinstance(models, Mapping):
        named = dict(models)
    else:
        named = {}
        for model in models:
            name = getattr(model, "name", None) or type(model).__name__
            if name in named:
                raise RobustkitError(
                    f"two {role} models are both called {name!r}: pass a dict of unique names"
                )
            named[name] = model
    if not named:
        raise RobustkitError(f"give at least one {role} model")
    return named


def data_tensors(data: DatasetInfo | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The images and labels as two tensors, read once."""
    if not isinstance(data, tuple):
        return dataset_tensors(data)
    x, y = data
    if x.dim() != 4 or len(x) != len(y) or len(x) == 0:
        raise RobustkitError(
            f"give images (N, C, H, W) with one label each, got {tuple(x.shape)} and "
            f"{tuple(torch.as_tensor(y).shape)}"
        )
    return x, torch.as_tensor(y).long()


def _check_model(name: str, model: nn.Module, x: Tensor) -> None:
    """Same input shape as the data, and logits out: one clear line otherwise."""
    expected = getattr(model, "input_shape", None)
    shape = tuple(x.shape[1:])
    if expected is not None and tuple(expected) != shape:
        raise RobustkitError(
            f"model {name} takes inputs of shape {tuple(expected)} but the data has {shape}: "
            "pick models and a dataset of the same image size"
        )
    check_classifier(model, x[:2])


def _check_differentiable(name: str, model: nn.Module, x: Tensor) -> None:
    probe = x[:1].to(device_of(model)).requires_grad_(True)
    if not model(probe).requires_grad:
        raise RobustkitError(f"source {name} has no gradients: use it as a target only")


def _craft(
    name: str,
    model: nn.Module,
    attack: Attack,
    x: Tensor,
    y: Tensor,
    eps: float,
    batch_size: int,
    on_progress: Progress | None,
) -> Tensor:
    batches = range(0, len(x), batch_size)
    crafted = []
    for done, start in enumerate(batches, start=1):
        result = attack(
            model, x[start : start + batch_size], y[start : start + batch_size], eps=eps
        )
        crafted.append(result.x_adv.cpu())
        if on_progress is not None:
            on_progress(name, done, len(batches))
    return torch.cat(crafted)


def _predict(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    device = device_of(model)
    with torch.no_grad():
        return torch.cat(
            [
                model(x[start : start + batch_size].to(device)).argmax(dim=1).cpu()
                for start in range(0, len(x), batch_size)
            ]
        )
