"""Noise corruptions: Gaussian, shot (Poisson) and impulse (salt and pepper) noise."""

from __future__ import annotations

import torch
from torch import Tensor

from robustkit.corruptions.base import register_corruption
from robustkit.corruptions.tables import Protocol


def uniform(
    shape: tuple[int, ...], g: torch.Generator, low: float = 0.0, high: float = 1.0
) -> Tensor:
    """U(low, high) draws on the generator's device."""
    return low + (high - low) * torch.rand(shape, generator=g, device=g.device)


@register_corruption("gaussian_noise")
def gaussian_noise(x: Tensor, sigma: float, _: Protocol, g: torch.Generator) -> Tensor:
    """x + N(0, sigma^2), per pixel and channel."""
    return x + sigma * torch.randn(x.shape, generator=g, device=x.device)


@register_corruption("shot_noise")
def shot_noise(x: Tensor, photons: float, _: Protocol, g: torch.Generator) -> Tensor:
    """Poisson(x * photons) / photons: photon noise at a given exposure."""
    return torch.poisson(x * photons, generator=g) / photons


@register_corruption("impulse_noise")
def impulse_noise(x: Tensor, amount: float, _: Protocol, g: torch.Generator) -> Tensor:
    """A share ``amount`` of the values set to 0 or 1 with even odds (scikit-image's s&p)."""
    flipped = uniform(x.shape, g) < amount
    salt = uniform(x.shape, g) < 0.5
    return torch.where(flipped, salt.to(x.dtype), x)
