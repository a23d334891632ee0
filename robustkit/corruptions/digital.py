"""Digital corruptions: brightness, contrast, elastic transform, pixelate and JPEG compression."""

from __future__ import annotations

import torch
from kornia.enhance import jpeg_codec_differentiable
from kornia.geometry.transform import warp_affine
from torch import Tensor
from torch.nn import functional as F

from robustkit.corruptions.base import register_corruption
from robustkit.corruptions.filters import gaussian, luma
from robustkit.corruptions.noise import uniform
from robustkit.corruptions.tables import Protocol


@register_corruption("brightness")
def brightness(x: Tensor, shift: float, _: Protocol, g: torch.Generator) -> Tensor:
    """The HSV value channel raised by ``shift``. Hue and saturation fixed, every channel is
    proportional to the value (the channel maximum), so the HSV round trip reduces to a rescale
    by new/old value (grey where the value is 0); the tests check it against kornia's
    rgb_to_hsv / hsv_to_rgb round trip, which is much slower on CPU."""
    value = x.amax(dim=1, keepdim=True)
    raised = (value + shift).clamp(0, 1)
    return torch.where(value > 0, x * raised / value.clamp(min=1e-12), raised)


@register_corruption("contrast")
def contrast(x: Tensor, factor: float, _: Protocol, g: torch.Generator) -> Tensor:
    """Distances to each channel's mean scaled by ``factor``."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * factor + mean


def _random_affine(x: Tensor, jitter: float, g: torch.Generator) -> Tensor:
    """The CIFAR-10-C warp: three points around the centre moved by U(-jitter, jitter) each,
    the affine map between them applied with the border reflected (cv2.BORDER_REFLECT_101)."""
    n, _c, h, w = x.shape
    centre = torch.tensor([h // 2, w // 2], dtype=torch.float32, device=x.device)
    side = min(h, w) // 3
    offsets = torch.tensor([[1, 1], [1, -1], [-1, -1]], dtype=torch.float32, device=x.device)
    source = (centre + side * offsets).expand(n, 3, 2)
    target = source + uniform((n, 3, 2), g, -jitter, jitter)
    ones = torch.ones(n, 3, 1, device=x.device)
    # rows [x y 1] @ A^T = target: solve for the 2 x 3 matrix A of each image
    matrix = torch.linalg.solve(torch.cat([source, ones], dim=2), target).transpose(1, 2)
    return warp_affine(x, matrix, (h, w), padding_mode="reflection", align_corners=True)


@register_corruption("elastic_transform")
def elastic_transform(x: Tensor, p: float | tuple, proto: Protocol, g: torch.Generator) -> Tensor:
    """A smooth random displacement field (bilinear, border mirrored); CIFAR-10-C warps the
    image by a random affine map first. Amplitudes scale with the image side."""
    n, _c, h, w = x.shape
    if proto.elastic_affine:
        alpha, sigma, jitter = (value * h for value in p)  # type: ignore[union-attr]
        x = _random_affine(x, jitter, g)
        amplitude = 1.0
    else:
        alpha, sigma, amplitude = float(p), 0.01 * h, 0.005 * h  # type: ignore[arg-type]
    field = uniform((n, 2, h, w), g, -amplitude, amplitude)
    field = gaussian(field, sigma, border="reflect", truncate=3.0) * alpha
    ys = torch.arange(h, device=x.device, dtype=x.dtype)[:, None] + field[:, 1]
    xs = torch.arange(w, device=x.device, dtype=x.dtype)[None, :] + field[:, 0]
    grid = torch.stack([(2 * xs + 1) / w - 1, (2 * ys + 1) / h - 1], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def box_matrix(size_in: int, size_out: int, device: torch.device) -> Tensor:
    """(size_out, size_in) weights of PIL's BOX resampling: an even mean of the input pixels
    whose centres fall in each output pixel's footprint (nearest-like when enlarging)."""
    scale = size_in / size_out
    support = 0.5 * max(scale, 1.0)
    centre = (torch.arange(size_out, device=device, dtype=torch.float64) + 0.5) * scale
    pixel = torch.arange(size_in, device=device, dtype=torch.float64)
    low = (centre - support + 0.5).floor().clamp(min=0)
    high = (centre + support + 0.5).floor().clamp(max=size_in)
    t = (pixel[None] - centre[:, None] + 0.5) / max(scale, 1.0)
    window = (pixel[None] >= low[:, None]) & (pixel[None] < high[:, None])
    weights = ((t > -0.5) & (t <= 0.5) & window).double()
    return (weights / weights.sum(dim=1, keepdim=True)).float()


def _resize_box(x: Tensor, height: int, width: int) -> Tensor:
    rows = box_matrix(x.shape[-2], height, x.device)
    cols = box_matrix(x.shape[-1], width, x.device)
    return rows @ x @ cols.T


@register_corruption("pixelate")
def pixelate(x: Tensor, factor: float, proto: Protocol, g: torch.Generator) -> Tensor:
    """Shrunk by ``factor`` with PIL's BOX filter and enlarged back (BOX, or NEAREST as in
    imagecorruptions)."""
    h, w = x.shape[-2:]
    small = _resize_box(x, int(h * factor), int(w * factor))
    if proto.pixelate_up == "box":
        return _resize_box(small, h, w)
    return F.interpolate(small, size=(h, w), mode="nearest-exact")


@register_corruption("jpeg_compression")
def jpeg_compression(x: Tensor, quality: int, _: Protocol, g: torch.Generator) -> Tensor:
    """Encoded and decoded at JPEG ``quality`` (kornia's codec; grey images go through RGB)."""
    grey = x.shape[1] == 1
    rgb = x.expand(-1, 3, -1, -1) if grey else x
    q = torch.tensor([float(quality)], device=x.device)
    out = jpeg_codec_differentiable(rgb.contiguous(), q)
    return luma(out) if grey else out
