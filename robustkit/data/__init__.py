"""Datasets: the bundled MNIST sample, torchvision datasets and image folders."""

from robustkit.data.datasets import DatasetInfo, list_datasets, load_dataset, select, subset
from robustkit.data.indices import indices_record, read_indices
from robustkit.data.tensors import dataset_tensors

__all__ = [
    "DatasetInfo",
    "dataset_tensors",
    "indices_record",
    "list_datasets",
    "load_dataset",
    "read_indices",
    "select",
    "subset",
]
