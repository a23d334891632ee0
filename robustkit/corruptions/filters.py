"""Filters the corruptions share: scikit-image's Gaussian, the clipped zoom, a directional blur
along a per-image angle, and the luma weights."""

from __future__ import annotations

import math

import torch
from kornia.filters import gaussian_blur2d
from torch import Tensor
from torch.nn import functional as F

CV2_LUMA = (0.299, 0.587, 0.114)  # cv2.COLOR_RGB2GRAY and PIL's "L"


def gaussian(
    x: Tensor, sigma: float, *, border: str = "replicate", truncate: float = 4.0
) -> Tensor:
    """skimage.filters.gaussian: a kernel of radius int(truncate * sigma + 0.5); ``border``
    replicate is its default mode 'nearest'."""
    radius = int(truncate * sigma + 0.5)
    if sigma <= 0 or radius == 0:
        return x
    size = 2 * radius + 1
    return gaussian_blur2d(x, (size, size), (sigma, sigma), border_type=border)


def luma(x: Tensor) -> Tensor:
    """(N, 1, H, W) grey level of RGB (or already grey) images."""
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(CV2_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def clipped_zoom(x: Tensor, factor: float, *, trim_centre: bool) -> Tensor:
    """Zoom into the centre by ``factor`` (bilinear, scipy.ndimage.zoom's corner alignment);
    trimmed to the input size, at the centre or the top-left corner (imagecorruptions), which
    keeps its one-pixel overhang only where it is trimmed later."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top : top + ch, left : left + cw]
    size = (round(ch * factor), round(cw * factor))
    zoomed = (
        crop
        if size == (ch, cw)
        else F.interpolate(crop, size=size, mode="bilinear", align_corners=True)
    )
    if trim_centre:
        top, left = (zoomed.shape[-2] - h) // 2, (zoomed.shape[-1] - w) // 2
        return zoomed[..., top : top + h, left : left + w]
    return zoomed


def directional_blur(x: Tensor, radius: int, sigma: float, angle: Tensor) -> Tensor:
    """Motion blur after imagecorruptions: a one-sided Gaussian of 2 * radius + 1 taps along
    ``angle`` (degrees, one per image), each tap a shift with the border replicated; taps that
    would leave the image are dropped (the kernel is not renormalised, as in the reference)."""
    n, c, h, w = x.shape
    width = 2 * radius + 1
    taps = torch.arange(width, device=x.device, dtype=torch.float64)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(x.dtype)
    rad = torch.deg2rad(angle.double())[:, None]
    dy = -torch.ceil(taps * torch.sin(rad) - 0.5).long()  # (N, width)
    dx = -torch.ceil(taps * torch.cos(rad) - 0.5).long()
    inside = ((dy.abs() < h) & (dx.abs() < w)).long().cumprod(dim=1).bool()
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    flat = x.reshape(n, c, h * w)
    out = torch.zeros_like(flat)
    for i in range(width):
        if not bool(inside[:, i].any()):
            break
        r = (rows[None] - dy[:, i, None]).clamp(0, h - 1)  # (N, H)
        q = (cols[None] - dx[:, i, None]).clamp(0, w - 1)  # (N, W)
        index = (r[:, :, None] * w + q[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
        weight = kernel[i] * inside[:, i].to(x.dtype)[:, None, None]
        out += weight * flat.gather(2, index)
    return out.reshape(n, c, h, w)
