"""A dataset read once into two tensors: what training and the transfer matrix work on."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from robustkit.data.datasets import DatasetInfo
from robustkit.errors import RobustkitError

MAX_TENSOR_BYTES = 4 * 2**30
BATCH = 1000


def dataset_tensors(
    info: DatasetInfo, *, max_bytes: int = MAX_TENSOR_BYTES
) -> tuple[Tensor, Tensor]:
    """The whole dataset as (images (N, C, H, W), labels (N,) int64), refused above
    ``max_bytes`` of images with a line pointing at ``--num-samples``."""
    size = len(info.dataset)  # type: ignore[arg-type]
    if size == 0:
        raise RobustkitError(f"{info.name} holds no images: check the dataset or --num-samples")
    first, _ = info.dataset[0]
    if size * first.numel() * first.element_size() > max_bytes:
        raise RobustkitError(
            f"{info.name} is too large to hold in memory ({size} images of "
            f"{tuple(first.shape)}): use --num-samples"
        )
    xs, ys = [], []
    for x, y in DataLoader(info.dataset, batch_size=BATCH):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    return torch.cat(xs), torch.cat(ys).long()
