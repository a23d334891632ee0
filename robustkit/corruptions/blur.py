"""Blur corruptions: defocus, glass, motion and zoom blur."""

from __future__ import annotations

import torch
from kornia.filters import filter2d, gaussian_blur2d
from torch import Tensor

from robustkit.corruptions.base import register_corruption
from robustkit.corruptions.filters import clipped_zoom, directional_blur, gaussian
from robustkit.corruptions.noise import uniform
from robustkit.corruptions.tables import Protocol


def disk_kernel(radius: float, alias_blur: float, device: torch.device) -> Tensor:
    """A normalised disk of ``radius`` on a grid of at least 17 x 17, softened by a 3 x 3 (5 x 5
    past radius 8) Gaussian of ``alias_blur`` against aliasing."""
    half = 8 if radius <= 8 else int(radius)
    grid = torch.arange(-half, half + 1, device=device, dtype=torch.float32)
    disk = ((grid[None] ** 2 + grid[:, None] ** 2) <= radius**2).float()
    disk = (disk / disk.sum())[None, None]
    size = 3 if radius <= 8 else 5
    return gaussian_blur2d(disk, (size, size), (alias_blur, alias_blur), border_type="reflect")[0]


@register_corruption("defocus_blur")
def defocus_blur(x: Tensor, p: tuple[float, float], _: Protocol, g: torch.Generator) -> Tensor:
    """Convolution with an antialiased disk (border reflected, as cv2.filter2D)."""
    radius, alias_blur = p
    return filter2d(x, disk_kernel(radius, alias_blur, x.device), border_type="reflect")


@register_corruption("glass_blur")
def glass_blur(x: Tensor, p: tuple[float, int, int], _: Protocol, g: torch.Generator) -> Tensor:
    """Gaussian blur, local pixel moves, Gaussian blur again. Pixels are visited bottom-right to
    top-left, each taking the value at a random offset in [-delta, delta) (the reference's numpy
    'swap' of two views copies one way; so does this), the same order for every image."""
    sigma, delta, iterations = p
    n, _c, h, w = x.shape
    x = torch.floor(gaussian(x, sigma) * 255) / 255  # the reference stores uint8 in between
    rows = torch.arange(h - delta, delta, -1, device=x.device)
    cols = torch.arange(w - delta, delta, -1, device=x.device)
    targets = (rows[:, None] * w + cols[None, :]).flatten()  # visiting order
    offsets = torch.randint(
        -delta, delta, (iterations, len(targets), 2, n), generator=g, device=x.device
    )
    sources = targets[None, :, None] + offsets[:, :, 1] * w + offsets[:, :, 0]  # dy * w + dx
    flat = x.reshape(n, -1, h * w)
    images = torch.arange(n, device=x.device)
    for target, source in zip(targets.tolist() * iterations, sources.flatten(0, 1), strict=True):
        flat[:, :, target] = flat[images, :, source]
    x = flat.reshape(x.shape)
    return gaussian(x, sigma)


@register_corruption("motion_blur")
def motion_blur(x: Tensor, p: tuple[int, float], _: Protocol, g: torch.Generator) -> Tensor:
    """A directional blur at a random angle in [-45, 45) degrees per image."""
    radius, sigma = p
    angle = uniform((len(x),), g, -45.0, 45.0)
    return directional_blur(x, int(radius), float(sigma), angle)


@register_corruption("zoom_blur")
def zoom_blur(x: Tensor, factors: tuple[float, ...], proto: Protocol, g: torch.Generator) -> Tensor:
    """The mean of the image and its centre zoomed by each factor."""
    h, w = x.shape[-2:]
    out = x.clone()
    for factor in factors:
        out += clipped_zoom(x, factor, trim_centre=proto.zoom_trim_centre)[..., :h, :w]
    return out / (len(factors) + 1)
