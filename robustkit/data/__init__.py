"""Datasets: the bundled MNIST sample, torchvision datasets and image folders."""

from robustkit.data.datasets import (
    DatasetInfo,
    has_train_split,
    list_datasets,
    load_dataset,
    select,
    subset,
)
from robustkit.data.indices import indices_record, read_indices
from robustkit.data.splits import CraftingImages, crafting_images
from robustkit.data.tensors import dataset_tensors

__all__ = [
    "CraftingImages",
    "DatasetInfo",
    "crafting_images",
    "dataset_tensors",
    "has_train_split",
    "indices_record",
    "list_datasets",
    "load_dataset",
    "read_indices",
    "select",
    "subset",
]
