"""The audit's inputs: models, data and attacks from what a user passes, checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from robustkit.attacks import Attack, attack_class
from robustkit.auditing.spec import DEFAULTS, AuditSpec
from robustkit.data import DatasetInfo, load_dataset, select, subset
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, load_model


def build_attack(spec: str | Attack, **hyper: Any) -> Attack:
    """An attack from a registry name; the audit's steps and restarts go to iterative attacks
    only (FGSM stays one step)."""
    if isinstance(spec, Attack):
        return spec
    cls = attack_class(spec)
    if not cls.iterative:
        return cls()
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in hyper.items() if k in names and v is not None})


def resolve_model(model: str | nn.Module, device: str | torch.device | None) -> RobustModel:
    """A RobustModel from a spec string, a RobustModel, or a bare module taking [0, 1] pixels."""
    if isinstance(model, str):
        return load_model(model, device=device)
    if isinstance(model, RobustModel):
        return model.to(device) if device is not None else model
    return RobustModel(model, name=type(model).__name__, device=device)


def resolve_data(
    data: str | DatasetInfo | Dataset | tuple[Tensor, Tensor],
    num_samples: int | None,
    seed: int,
    model: RobustModel | None = None,
    indices: Sequence[int] | Tensor | None = None,
) -> DatasetInfo:
    """A DatasetInfo from a dataset name, a DatasetInfo, a Dataset or an (x, y) pair, cut to a
    seeded subset of ``num_samples`` items or to the items ``indices`` (dataset indices, in that
    order) when given; an image folder named by a string is labelled in ``model``'s classes."""
    if indices is not None and num_samples is not None:
        raise RobustkitError(
            "indices lists the images to audit and num_samples draws a seeded subset: give one"
        )
    if isinstance(data, str):
        info = load_dataset(data, model=model)
    else:
        info = data if isinstance(data, DatasetInfo) else _wrap_dataset(data)
    if indices is not None:
        return select(info, indices)
    return subset(info, num_samples, seed) if num_samples is not None else info


def choose_samples(info: DatasetInfo, spec: AuditSpec) -> DatasetInfo:
    """The images ``spec`` audits: its ``indices``, a seeded subset of ``num_samples`` (0: all),
    or by default a seeded subset of :attr:`~robustkit.auditing.spec.Defaults.num_samples`
    (every image, in order, of a dataset no larger)."""
    if spec.indices is not None:
        return select(info, spec.indices)
    if spec.num_samples == 0:
        return info
    if spec.num_samples is not None:
        return subset(info, spec.num_samples, spec.seed)
    if len(info.dataset) <= DEFAULTS.num_samples:  # type: ignore[arg-type]
        return info
    return subset(info, DEFAULTS.num_samples, spec.seed)


def _wrap_dataset(data: Dataset | tuple[Tensor, Tensor]) -> DatasetInfo:
    if isinstance(data, tuple):
        x, y = data
        if x.dim() != 4:
            raise RobustkitError(
                f"images must have shape (N, C, H, W), got {tuple(x.shape)}: "
                "add the channel dimension with x.unsqueeze(1)"
            )
        data = TensorDataset(x, y)
    first_x, _ = data[0]
    return DatasetInfo(
        dataset=data, name=type(data).__name__, classes=[], input_shape=tuple(first_x.shape)
    )


@dataclass(frozen=True)
class Batches:
    """The dataset in fixed-order batches numbered from 0, any of which loads alone (a resumed or
    distributed audit loads only the batches it attacks)."""

    info: DatasetInfo
    size: int

    def __post_init__(self) -> None:
        if self.size < 1:
            raise RobustkitError(f"batch size must be >= 1, got {self.size}")

    def __len__(self) -> int:
        return -(-len(self.info.dataset) // self.size)  # type: ignore[arg-type]

    def start(self, index: int) -> int:
        """The position in the audited items of batch ``index``'s first item."""
        return index * self.size

    def samples(self, index: int) -> Tensor:
        """The dataset indices of batch ``index``'s items (what the rows' ``sample`` records)."""
        return self.info.sample_indices()[self.start(index) : self.start(index) + self.size]

    def load(self, indices: list[int]) -> DataLoader:
        """The batches ``indices``, in that order."""
        total = len(self.info.dataset)  # type: ignore[arg-type]
        chosen = [
            list(range(self.start(i), min(self.start(i) + self.size, total))) for i in indices
        ]
        return DataLoader(self.info.dataset, batch_sampler=chosen)

    def first(self) -> tuple[Tensor, Tensor]:
        """Batch 0, which the model checks and probes look at."""
        x, y = next(iter(self.load([0])))
        return x, y


def describe_model(model: RobustModel) -> dict[str, Any]:
    """What a report header says about a model."""
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "input_shape": list(model.input_shape) if model.input_shape else None,
        "mean": None if model.mean is None else model.mean.flatten().tolist(),
        "std": None if model.std is None else model.std.flatten().tolist(),
        "execution": dataclasses.asdict(model.execution),
        "output_index": model.outputs.index,
        "output_key": model.outputs.key,
    }
