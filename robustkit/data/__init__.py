"""Datasets: the bundled MNIST sample, torchvision datasets and image folders."""

from robustkit.data.datasets import DatasetInfo, list_datasets, load_dataset, subset
from robustkit.data.tensors import dataset_tensors

__all__ = ["DatasetInfo", "dataset_tensors", "list_datasets", "load_dataset", "subset"]
