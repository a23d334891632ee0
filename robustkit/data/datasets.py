"""Dataset loading: bundled MNIST sample, torchvision datasets and image folders."""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset, TensorDataset

from robustkit.data.corrupted import PREFIX as CORRUPTED_PREFIX
from robustkit.data.corrupted import SPEC as CORRUPTED_SPEC
from robustkit.data.corrupted import load_corrupted
from robustkit.data.folders import DEFAULT_SIZE, image_folder
from robustkit.errors import RobustkitError
from robustkit.registry import unknown_name_error

if TYPE_CHECKING:
    from robustkit.models import RobustModel

SAMPLE_NAME = "mnist-sample"
SAMPLE_FILE = Path(__file__).parent / "files" / "mnist_test_1000.npz"
ENV_VAR = "ROBUSTKIT_DATA"
CACHE_ROOT = Path("~/.cache/robustkit/data")
IMAGEFOLDER_PREFIX = "imagefolder:"

MNIST_CLASSES = [
    "0 - zero",
    "1 - one",
    "2 - two",
    "3 - three",
    "4 - four",
    "5 - five",
    "6 - six",
    "7 - seven",
    "8 - eight",
    "9 - nine",
]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset of (x in [0, 1] as C,H,W float tensor, y int) plus its metadata.

    ``indices`` holds, for a subset, each item's index in the dataset the user named (int64):
    what results.csv's ``sample`` column records, so that a row leads back to its image. None
    when the items are that dataset itself (item i is image i).
    """

    dataset: Dataset
    name: str
    classes: list[str]
    input_shape: tuple[int, int, int]
    indices: Tensor | None = field(default=None, compare=False)

    def sample_indices(self) -> Tensor:
        """Every item's index in the named dataset, in item order (int64)."""
        if self.indices is not None:
            return self.indices
        return torch.arange(len(self.dataset))  # type: ignore[arg-type]


@dataclass(frozen=True)
class _TorchvisionSpec:
    cls_name: str  # attribute of torchvision.datasets
    folder: str  # folder torchvision reads under root
    input_shape: tuple[int, int, int]


_TORCHVISION: dict[str, _TorchvisionSpec] = {
    "mnist": _TorchvisionSpec("MNIST", "MNIST/raw", (1, 28, 28)),
    "fashion-mnist": _TorchvisionSpec("FashionMNIST", "FashionMNIST/raw", (1, 28, 28)),
    "cifar10": _TorchvisionSpec("CIFAR10", "cifar-10-batches-py", (3, 32, 32)),
}


def list_datasets() -> list[str]:
    """Names ``load_dataset`` accepts (plus ``imagefolder:PATH`` and CIFAR-10-C folders)."""
    return [SAMPLE_NAME, *_TORCHVISION, f"{IMAGEFOLDER_PREFIX}PATH", CORRUPTED_SPEC]


def has_train_split(name: str) -> bool:
    """Whether ``load_dataset(name, train=True)`` gives a training split (torchvision datasets);
    other datasets ignore ``train``."""
    return name in _TORCHVISION


def load_dataset(
    name: str = SAMPLE_NAME,
    *,
    root: str | Path | None = None,
    train: bool = False,
    num_samples: int | None = None,
    seed: int = 0,
    image_size: int | None = None,
    model: RobustModel | None = None,
    labels: str | Path | None = None,
) -> DatasetInfo:
    """Load a dataset by name, optionally as a fixed seeded subset of ``num_samples`` items.

    An ``imagefolder:PATH`` is labelled in ``model``'s class indices: by its class names or ids
    (ImageNet wnids) where it has them, by the ``labels`` CSV (folder,index lines) when given,
    else in the folders' sorted order.
    """
    if labels is not None and not name.startswith(IMAGEFOLDER_PREFIX):
        raise RobustkitError(
            f"--labels maps image folders to classes, and {name!r} is not one: drop --labels"
        )
    if name == SAMPLE_NAME:
        info = _load_sample()
    elif name in _TORCHVISION:
        info = _load_torchvision(name, root=root, train=train)
    elif name.startswith(IMAGEFOLDER_PREFIX):
        path = name[len(IMAGEFOLDER_PREFIX) :]
        info = _load_imagefolder(path, image_size=image_size, model=model, labels=labels)
    elif name.startswith(CORRUPTED_PREFIX):
        dataset, classes, shape = load_corrupted(name)
        info = DatasetInfo(dataset=dataset, name=name, classes=classes, input_shape=shape)
    else:
        raise unknown_name_error(
            "dataset",
            name,
            [SAMPLE_NAME, *_TORCHVISION],
            extra=[f"{IMAGEFOLDER_PREFIX}PATH", CORRUPTED_SPEC],
        )
    if num_samples is not None:
        info = subset(info, num_samples, seed)
    return info


def _load_sample() -> DatasetInfo:
    if not SAMPLE_FILE.is_file():
        raise RobustkitError(f"bundled MNIST sample missing at {SAMPLE_FILE}: reinstall robustkit")
    with np.load(SAMPLE_FILE, allow_pickle=False) as data:
        images = torch.from_numpy(data["images"].astype(np.float32) / 255.0).unsqueeze(1)
        labels = torch.from_numpy(data["labels"].astype(np.int64))
    return DatasetInfo(
        dataset=TensorDataset(images, labels),
        name=SAMPLE_NAME,
        classes=list(MNIST_CLASSES),
        input_shape=(1, 28, 28),
    )


def _resolve_root(root: str | Path | None) -> tuple[Path, bool, str]:
    """Return (root, download, where it came from)."""
    if root is not None:
        return Path(root).expanduser(), False, "--data-root"
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser(), False, ENV_VAR
    return CACHE_ROOT.expanduser(), True, "cache"


def _load_torchvision(name: str, *, root: str | Path | None, train: bool) -> DatasetInfo:
    from torchvision import datasets, transforms

    spec = _TORCHVISION[name]
    data_root, download, source = _resolve_root(root)
    cls: Callable[..., Dataset] = getattr(datasets, spec.cls_name)
    try:
        dataset = cls(
            str(data_root), train=train, download=download, transform=transforms.ToTensor()
        )
    except (RuntimeError, OSError) as exc:
        if download:
            first_line = (
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            )
            raise RobustkitError(
                f"could not download {spec.cls_name} into {data_root} ({first_line}): check the "
                f"network, or fetch it elsewhere and point --data-root at a folder holding "
                f"{spec.folder}"
            ) from exc
        if "not found" not in str(exc).lower():
            raise
        fix = (
            "unset ROBUSTKIT_DATA to download it"
            if source == ENV_VAR
            else "leave --data-root and ROBUSTKIT_DATA unset to download it"
        )
        raise RobustkitError(
            f"{spec.cls_name} not found under {data_root}: point --data-root at a folder "
            f"holding {spec.folder}, or {fix}"
        ) from exc
    return DatasetInfo(
        dataset=dataset,
        name=name,
        classes=list(dataset.classes),  # type: ignore[attr-defined]
        input_shape=spec.input_shape,
    )


def _load_imagefolder(
    path: str,
    *,
    image_size: int | None,
    model: RobustModel | None,
    labels: str | Path | None,
) -> DatasetInfo:
    folder = Path(path).expanduser()
    if not path or not folder.is_dir():
        raise RobustkitError(
            f"image folder '{path}' not found: give imagefolder:PATH with PATH a folder "
            "holding one subfolder of images per class"
        )
    size = image_size or DEFAULT_SIZE
    dataset, folder_labels = image_folder(
        folder,
        size=size,
        classes=None if model is None else model.classes,
        num_classes=None if model is None else model.num_classes,
        labels_file=labels,
    )
    return DatasetInfo(
        dataset=dataset,
        name=f"{IMAGEFOLDER_PREFIX}{folder}",
        classes=folder_labels.names,
        input_shape=(3, size, size),  # every image is read as RGB
    )


def subset(info: DatasetInfo, num_samples: int, seed: int) -> DatasetInfo:
    """A fixed, seeded subset of ``num_samples`` items."""
    size = len(info.dataset)  # type: ignore[arg-type]
    if not 0 < num_samples <= size:
        raise RobustkitError(
            f"num_samples={num_samples} is out of range: {info.name} has {size} items, "
            f"so give --num-samples between 1 and {size}"
        )
    generator = torch.Generator().manual_seed(seed)
    positions = torch.randperm(size, generator=generator)[:num_samples]
    return _items(info, positions)


def select(
    info: DatasetInfo, indices: Sequence[int] | Tensor, *, source: str = "indices"
) -> DatasetInfo:
    """Exactly the images ``indices`` of the dataset, in that order; ``source`` names the list
    in the errors (an empty list, a non-integer, an index twice or out of range)."""
    values = indices.tolist() if isinstance(indices, Tensor) else list(indices)
    if info.indices is not None:
        raise RobustkitError(
            f"{source} picks images of a whole dataset and {info.name} is already a subset: "
            "pass the whole dataset (no num_samples)"
        )
    if not values:
        raise RobustkitError(f"{source} lists no image: give at least one dataset index")
    size = len(info.dataset)  # type: ignore[arg-type]
    first_seen: dict[int, int] = {}
    for entry, value in enumerate(values, start=1):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise RobustkitError(
                f"{source}: entry {entry} ({value!r}) is not an integer: give dataset indices"
            )
        index = int(value)
        if not 0 <= index < size:
            raise RobustkitError(
                f"{source}: index {index} is out of range: {info.name} has {size} images, "
                f"indices 0 to {size - 1}"
            )
        if index in first_seen:
            raise RobustkitError(
                f"{source}: index {index} is listed twice (entries {first_seen[index]} and "
                f"{entry}): list each image once"
            )
        first_seen[index] = entry
    return _items(info, torch.tensor(list(first_seen), dtype=torch.int64))


def _items(info: DatasetInfo, positions: Tensor) -> DatasetInfo:
    """The items at ``positions`` of ``info``, each keeping its index in the named dataset."""
    return DatasetInfo(
        dataset=Subset(info.dataset, positions.tolist()),
        name=info.name,
        classes=info.classes,
        input_shape=info.input_shape,
        indices=info.sample_indices()[positions],
    )
