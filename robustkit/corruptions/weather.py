"""Weather corruptions: snow, frost and fog."""

from __future__ import annotations

import torch
from torch import Tensor

from robustkit.corruptions.base import register_corruption
from robustkit.corruptions.filters import clipped_zoom, directional_blur, luma
from robustkit.corruptions.noise import uniform
from robustkit.corruptions.tables import Protocol
from robustkit.corruptions.textures import frost_crops

PLASMA_WIBBLE = 100.0  # the diamond-square map's initial roughness


@register_corruption("snow")
def snow(x: Tensor, p: tuple[float, ...], proto: Protocol, g: torch.Generator) -> Tensor:
    """A thresholded, zoomed, motion-blurred noise layer (flakes), added twice (once turned by
    180 degrees) to the image brightened towards its grey level."""
    loc, scale, zoom, threshold, radius, sigma, blend = p
    n, _c, h, w = x.shape
    flakes = loc + scale * torch.randn((n, 1, h, w), generator=g, device=x.device)
    flakes = clipped_zoom(flakes, zoom, trim_centre=proto.zoom_trim_centre)
    flakes = torch.where(flakes < threshold, 0.0, flakes).clamp(0, 1)
    angle = uniform((n,), g, -135.0, -45.0)
    flakes = directional_blur(flakes, int(radius), float(sigma), angle)
    flakes = (flakes * 255).round()[..., :h, :w] / 255
    x = blend * x + (1 - blend) * torch.maximum(x, luma(x) * 1.5 + 0.5)
    return x + flakes + flakes.flip(-2, -1)


@register_corruption("frost")
def frost(x: Tensor, p: tuple[float, float], proto: Protocol, g: torch.Generator) -> Tensor:
    """A blend of the image and a random crop of a frost photograph (grey for grey images)."""
    image_weight, frost_weight = p
    n, c, h, w = x.shape
    texture = frost_crops(n, h, w, proto.frost_scale, g)
    if c == 1:
        weights = torch.tensor((0.2989, 0.5870, 0.1140), device=x.device).view(1, 3, 1, 1)
        texture = (texture * weights).sum(dim=1, keepdim=True)
    return image_weight * x + frost_weight * texture


def plasma_fractal(n: int, size: int, decay: float, g: torch.Generator) -> Tensor:
    """(n, size, size) diamond-square height maps scaled to [0, 1]; ``size`` a power of two."""
    maps = torch.zeros(n, size, size, device=g.device)
    step, wibble = size, PLASMA_WIBBLE

    def wibbled(total: Tensor) -> Tensor:
        return total / 4 + wibble * uniform(tuple(total.shape), g, -wibble, wibble)

    while step >= 2:
        half = step // 2
        corners = maps[:, ::step, ::step]
        squares = corners + corners.roll(-1, dims=1)
        squares = squares + squares.roll(-1, dims=2)
        maps[:, half::step, half::step] = wibbled(squares)
        centres, corners = maps[:, half::step, half::step], maps[:, ::step, ::step]
        left = centres + centres.roll(1, dims=1) + corners + corners.roll(-1, dims=2)
        maps[:, ::step, half::step] = wibbled(left)
        top = centres + centres.roll(1, dims=2) + corners + corners.roll(-1, dims=1)
        maps[:, half::step, ::step] = wibbled(top)
        step, wibble = half, wibble / decay
    low = maps.amin(dim=(1, 2), keepdim=True)
    maps = maps - low
    return maps / maps.amax(dim=(1, 2), keepdim=True)


@register_corruption("fog")
def fog(x: Tensor, p: tuple[float, float], _: Protocol, g: torch.Generator) -> Tensor:
    """A plasma-fractal haze added to the image, rescaled to keep its brightest value's share."""
    strength, decay = p
    n, _c, h, w = x.shape
    size = 1 << (max(h, w) - 1).bit_length()
    haze = plasma_fractal(n, size, decay, g)[:, None, :h, :w]
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x + strength * haze) * peak / (peak + strength)
