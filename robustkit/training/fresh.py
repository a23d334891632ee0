"""The model a run starts from: a fresh architecture (``arch:NAME``) or any model spec.

It lives here rather than in ``robustkit.models`` because it is the start of a training run and
needs the dataset (classes, shape, normalisation): ``robustkit.models`` stays free of data code.
"""

from __future__ import annotations

import torch

from robustkit.data import DatasetInfo
from robustkit.models import RobustModel, load_model
from robustkit.models.architectures import ARCHITECTURES
from robustkit.registry import unknown_name_error

ARCH_PREFIX = "arch:"
# Per-dataset normalisation for fresh architectures (arch:NAME).
DATASET_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "mnist-sample": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


def fresh_model(
    name: str, info: DatasetInfo, *, seed: int, device: str | None = None
) -> RobustModel:
    """An untrained architecture for ``info``, with the dataset's normalisation inside."""
    if name not in ARCHITECTURES:
        raise unknown_name_error("architecture", name, ARCHITECTURES)
    mean, std = DATASET_STATS.get(info.name, (None, None))
    torch.manual_seed(seed)
    return RobustModel(
        ARCHITECTURES[name](num_classes=len(info.classes)),
        mean=mean,
        std=std,
        input_shape=info.input_shape,
        num_classes=len(info.classes),
        name=f"{ARCH_PREFIX}{name}",
        device=device,
    )


def initial_model(
    spec: str,
    info: DatasetInfo,
    *,
    seed: int,
    device: str | None = None,
    output_index: int | None = None,
    output_key: str | None = None,
) -> RobustModel:
    """``arch:NAME`` as a fresh architecture, any other spec (zoo:NAME, file.py:factory, ...)
    loaded to fine-tune; ``output_index`` / ``output_key`` locate the logits in what the loaded
    model returns (a fresh architecture returns them)."""
    if spec.startswith(ARCH_PREFIX):
        return fresh_model(spec[len(ARCH_PREFIX) :], info, seed=seed, device=device)
    return load_model(spec, device=device, output_index=output_index, output_key=output_key)
