"""Pre-corrupted images in CIFAR-10-C's layout: ``{corruption}.npy`` holding N x 5 uint8 images
(N, H, W, C) or (N, H, W), severity 1 first, and ``labels.npy`` (N x 5 labels, or N)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from robustkit.errors import RobustkitError
from robustkit.registry import unknown_name_error

PREFIX = "cifar10-c:"
SPEC = f"{PREFIX}DIR:CORRUPTION:SEVERITY"
LEVELS = 5
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


class CorruptedImages(Dataset):
    """One severity of one corruption file, read lazily from a memory map."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        pixels = np.asarray(self.images[index], dtype=np.float32) / 255.0
        image = torch.from_numpy(pixels)
        image = image[None] if image.ndim == 2 else image.permute(2, 0, 1)
        return image, int(self.labels[index])


def parse_spec(spec: str) -> tuple[Path, str, int]:
    """'cifar10-c:DIR:fog:3' -> (DIR, 'fog', 3), checked."""
    parts = spec[len(PREFIX) :].rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise RobustkitError(f"give a corrupted dataset as {SPEC}, e.g. {PREFIX}CIFAR-10-C:fog:3")
    folder, corruption, severity = parts
    if severity not in {str(level) for level in range(1, LEVELS + 1)}:
        raise RobustkitError(
            f"severity {severity!r} in {spec!r} is out of range: give 1 to 5, as in {SPEC}"
        )
    return Path(folder).expanduser(), corruption, int(severity)


def load_corrupted(spec: str) -> tuple[Dataset, list[str], tuple[int, int, int]]:
    """The images of one corruption at one severity, their class names and input shape."""
    folder, corruption, severity = parse_spec(spec)
    if not folder.is_dir():
        raise RobustkitError(f"corrupted-images folder {folder} not found: fix DIR in {SPEC}")
    path, labels_path = folder / f"{corruption}.npy", folder / "labels.npy"
    if not path.is_file():
        present = sorted(p.stem for p in folder.glob("*.npy") if p.stem != "labels")
        raise unknown_name_error(f"corruption in {folder}", corruption, present)
    if not labels_path.is_file():
        raise RobustkitError(f"{folder} has no labels.npy: add one (N or N x 5 labels)")
    images = np.load(path, mmap_mode="r", allow_pickle=False)
    labels = np.load(labels_path, allow_pickle=False)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) % LEVELS:
        raise RobustkitError(
            f"{path} must hold N x 5 uint8 images (N, H, W[, C]) in severity order, got "
            f"{images.dtype} of shape {images.shape}"
        )
    per_level = len(images) // LEVELS
    if len(labels) not in (per_level, len(images)):
        raise RobustkitError(
            f"{labels_path} holds {len(labels)} labels for {len(images)} images in {path}: "
            f"give {per_level} or {len(images)}"
        )
    start = (severity - 1) * per_level
    level = images[start : start + per_level]
    if len(labels) == len(images):
        labels = labels[start : start + per_level]
    channels = 1 if images.ndim == 3 else images.shape[3]
    shape = (channels, images.shape[1], images.shape[2])
    count = int(labels.max()) + 1 if len(labels) else 0
    classes = (
        CIFAR10_CLASSES if shape == (3, 32, 32) and count <= 10 else list(map(str, range(count)))
    )
    return CorruptedImages(level, labels.astype(np.int64)), classes, shape
