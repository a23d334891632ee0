"""Image folders (one subfolder of images per class) as datasets of [0, 1] RGB tensors, labelled
in the model's class indices, with one clear error for an empty folder or an unreadable image."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from robustkit.data.classes import ModelClasses
from robustkit.data.labels import FolderLabels, folder_labels
from robustkit.errors import RobustkitError

DEFAULT_SIZE = 224


def image_folder(
    folder: Path,
    *,
    size: int = DEFAULT_SIZE,
    classes: ModelClasses | None = None,
    num_classes: int | None = None,
    labels_file: str | Path | None = None,
) -> tuple[Dataset, FolderLabels]:
    """The images under ``folder``, resized and centre-cropped to ``size``, each labelled with
    its class folder's index among the model's outputs (see :func:`folder_labels`)."""
    from torchvision import datasets, transforms
    from torchvision.datasets.folder import find_classes

    try:
        folders, _ = find_classes(str(folder))
    except FileNotFoundError as exc:
        raise _no_images(folder, exc) from exc
    labels = folder_labels(
        folders, classes=classes, num_classes=num_classes, labels_file=labels_file
    )
    transform = transforms.Compose(
        [transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor()]
    )
    try:
        dataset = datasets.ImageFolder(
            str(folder),
            transform=transform,
            target_transform=labels.indices.__getitem__,
            loader=read_rgb,
        )
    except FileNotFoundError as exc:
        raise _no_images(folder, exc) from exc
    return dataset, labels


def read_rgb(path: str) -> Image.Image:
    """The image at ``path`` in RGB; a truncated or corrupt file is a RobustkitError naming it."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as exc:  # PIL's UnidentifiedImageError and truncated-file errors
        raise RobustkitError(
            f"cannot read image {path} ({exc}): the file is truncated or not an image; "
            "replace or remove it"
        ) from exc


def _no_images(folder: Path, exc: OSError) -> RobustkitError:
    reason = str(exc).split(". Supported")[0].rstrip(".")  # torchvision lists the extensions
    return RobustkitError(
        f"no images found in '{folder}' ({reason}): put .png/.jpg images in one subfolder per "
        f"class (e.g. {folder}/cat/1.png)"
    )
