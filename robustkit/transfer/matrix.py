"""Transferability matrices (Papernot et al. 2016): adversarials crafted on each source model,
replayed on every target model.

Each source's adversarials are crafted once; each target classifies the clean images and every
source's adversarials in one pass. Cell (s, t) is the share of s's adversarials that t
misclassifies, over the samples both s and t classify correctly (``conditioned=True``) or over
all samples (``conditioned=False``). The diagonal is the white-box success rate.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from robustkit.attacks import Attack
from robustkit.auditing.inputs import build_attack
from robustkit.data import DatasetInfo, dataset_tensors
from robustkit.errors import RobustkitError
from robustkit.models import check_classifier
from robustkit.models.wrapper import device_of
from robustkit.transfer.result import COLUMNS, TransferResult

Models = Mapping[str, nn.Module] | Sequence[nn.Module]
Progress = Callable[[str, int, int], None]
"""Called as (source name, batches crafted, batches in all) while crafting."""


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
) -> TransferResult:
    """Craft adversarials on every source once and score them on every target.

    A named attack runs every step (``early_stop=False``): adversarials that stop at the first
    success sit on the source's decision boundary and transfer poorly.
    """
    started = time.perf_counter()
    source_models, target_models = _named(sources, "source"), _named(targets, "target")
    for name in source_models.keys() & target_models.keys():
        if source_models[name] is not target_models[name]:
            raise RobustkitError(f"source and target {name!r} are different models: rename one")
    attack_obj = build_attack(attack, steps=steps, early_stop=early_stop)
    if batch_size < 1:
        raise RobustkitError(f"batch size must be >= 1, got {batch_size}")
    x, y = data_tensors(data)
    for name, model in {**source_models, **target_models}.items():
        _check_model(name, model, x)
    for name, model in source_models.items():
        _check_differentiable(name, model, x)

    timings: dict[str, dict[str, float]] = {"craft": {}, "evaluate": {}}
    adversarials: dict[str, Tensor] = {}
    for name, model in source_models.items():
        tick = time.perf_counter()
        torch.manual_seed(seed)
        adversarials[name] = _craft(name, model, attack_obj, x, y, eps, batch_size, on_progress)
        timings["craft"][name] = time.perf_counter() - tick

    clean_correct: dict[str, Tensor] = {}
    fooled: dict[str, Tensor] = {}  # target -> (sources, samples): adversarial misclassified
    replay = torch.cat([x, *adversarials.values()])
    for name, model in {**target_models, **source_models}.items():
        tick = time.perf_counter()
        inputs = replay if name in target_models else x
        wrong = _predict(model, inputs, batch_size).view(-1, len(x)) != y
        clean_correct[name] = ~wrong[0]
        if name in target_models:
            fooled[name] = wrong[1:]
        timings["evaluate"][name] = time.perf_counter() - tick

    rows = []
    for index, s_name in enumerate(source_models):
        for t_name in target_models:
            hits = fooled[t_name][index]
            both = clean_correct[s_name] & clean_correct[t_name]
            for conditioned, mask in ((True, both), (False, torch.ones_like(both))):
                n = int(mask.sum())
                rate = hits[mask].float().mean().item() if n else float("nan")
                rows.append((s_name, t_name, eps, attack_obj.name, n, rate, conditioned))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    config = {
        "sources": list(source_models),
        "targets": list(target_models),
        "attack": dataclasses.asdict(attack_obj) | {"name": attack_obj.name},
        "eps": eps,
        "num_samples": len(x),
        "clean_accuracy": {k: v.float().mean().item() for k, v in clean_correct.items()},
        "seed": seed,
        "timings_s": timings,
        "wall_time_s": time.perf_counter() - started,
    }
    return TransferResult(frame=frame, config=config)


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
