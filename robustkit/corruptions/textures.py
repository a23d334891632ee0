"""The frost textures: the photographs that ship inside the ``imagecorruptions`` package.

They are data, read from the installed package's folder without importing it (its module fails
to import on current setuptools and numpy), resized once per scale and cached.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from robustkit.errors import RobustkitError

FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")  # the 5 drawn
COVER_MARGIN = 1.1  # imagecorruptions enlarges a texture to 1.1 x what covers the image


def frost_folder() -> Path:
    """The folder of frost images inside the installed imagecorruptions package."""
    spec = importlib.util.find_spec("imagecorruptions")
    folder = None
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "frost"
    if folder is None or not all((folder / name).is_file() for name in FROST_FILES):
        raise RobustkitError(
            "the frost corruption needs the frost images of the imagecorruptions package: "
            "pip install 'robustkit[corruptions]'"
        )
    return folder


@functools.lru_cache(maxsize=8)
def _original(index: int) -> Tensor:
    """Texture ``index`` as (1, 3, h, w) floats in [0, 1]."""
    from PIL import Image

    with Image.open(frost_folder() / FROST_FILES[index]) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)[None]


@functools.lru_cache(maxsize=32)
def _texture(index: int, size: tuple[int, int]) -> Tensor:
    """Texture ``index`` resized to ``size`` (bicubic, rounded to 8 bits as cv2 does)."""
    texture = _original(index)
    if size != tuple(texture.shape[-2:]):
        texture = F.interpolate(texture, size=size, mode="bicubic", align_corners=False)
    return (texture[0].clamp(0, 1) * 255).round() / 255


def texture_size(index: int, height: int, width: int, fixed: float | None) -> tuple[int, int]:
    """The texture's size once resized: by ``fixed`` (rounded, as cv2's fx) where that still
    covers the image, else by imagecorruptions' rule (1, or what covers the image, x 1.1,
    rounded up)."""
    h, w = _original(index).shape[-2:]
    if fixed is not None and round(h * fixed) > height and round(w * fixed) > width:
        return round(h * fixed), round(w * fixed)
    scale = max(1.0, height / h, width / w) * COVER_MARGIN
    return math.ceil(h * scale), math.ceil(w * scale)


def frost_crops(n: int, height: int, width: int, fixed: float | None, g: torch.Generator) -> Tensor:
    """(n, 3, height, width): each a random crop of a random texture, on the generator's device."""
    device = g.device
    choice = torch.randint(len(FROST_FILES), (n,), generator=g, device=device)
    out = torch.empty(n, 3, height, width, device=device)
    rows, cols = torch.arange(height, device=device), torch.arange(width, device=device)
    for index in range(len(FROST_FILES)):
        texture = _texture(index, texture_size(index, height, width, fixed)).to(device)
        th, tw = texture.shape[-2:]
        top = torch.randint(th - height, (n,), generator=g, device=device)
        left = torch.randint(tw - width, (n,), generator=g, device=device)
        mine = (choice == index).nonzero().squeeze(1)
        if mine.numel() == 0:
            continue
        r = (top[mine, None] + rows[None])[:, :, None]
        c = (left[mine, None] + cols[None])[:, None, :]
        out[mine] = texture[:, r, c].permute(1, 0, 2, 3)
    return out
