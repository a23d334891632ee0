"""Tiny image folders for the imagefolder tests: random 32 px (or ``size`` px) PNG or JPEG files,
one subfolder per class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def write_image_folder(
    root: Path,
    folders: Sequence[str],
    *,
    per_class: int = 2,
    suffix: str = ".png",
    size: int = 32,
) -> Path:
    """``per_class`` random images in each of ``folders`` under ``root``; returns ``root``."""
    rng = np.random.default_rng(0)
    for folder in folders:
        (root / folder).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{i}{suffix}")
    return root


def truncate(path: Path) -> None:
    """Keep the first half of the file's bytes, as an interrupted copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
