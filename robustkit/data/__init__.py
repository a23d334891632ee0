"""Datasets: the bundled MNIST sample, torchvision datasets and image folders."""

from robustkit.data.datasets import DatasetInfo, list_datasets, load_dataset, subset

__all__ = ["DatasetInfo", "list_datasets", "load_dataset", "subset"]
