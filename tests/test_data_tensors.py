"""dataset_tensors: a dataset read once into (images, labels), refused when too large."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from robustkit.data import DatasetInfo, dataset_tensors, load_dataset
from robustkit.errors import RobustkitError


def test_reads_every_image_and_label_in_order():
    images, labels = torch.rand(2500, 1, 4, 4), torch.arange(2500) % 10  # three batches
    x, y = dataset_tensors(DatasetInfo(TensorDataset(images, labels), "tiny", [], (1, 4, 4)))
    assert torch.equal(x, images) and torch.equal(y, labels) and y.dtype == torch.int64


def test_reads_a_bundled_dataset():
    info = load_dataset("mnist-sample", num_samples=20, seed=0)
    x, y = dataset_tensors(info)
    image, label = info.dataset[19]
    assert x.shape == (20, 1, 28, 28) and torch.equal(x[19], image) and y[19] == label


def test_a_dataset_too_large_for_memory_points_at_num_samples():
    info = load_dataset("mnist-sample", num_samples=10, seed=0)
    with pytest.raises(RobustkitError, match=r"too large to hold in memory.*--num-samples"):
        dataset_tensors(info, max_bytes=9 * 28 * 28 * 4)


def test_an_empty_dataset_is_one_line():
    empty = TensorDataset(torch.zeros(0, 1, 28, 28), torch.zeros(0))
    with pytest.raises(RobustkitError, match="holds no images"):
        dataset_tensors(DatasetInfo(empty, "empty", ["a"], (1, 28, 28)))
