"""The geometry of the L-inf and L2 balls that gradient attacks step in: random starts, ascent
directions and projections, per sample of a batch."""

from __future__ import annotations

import torch
from torch import Tensor


def per_sample(values: Tensor, like: Tensor) -> Tensor:
    """Reshape a per-sample vector to broadcast against a batch like ``like``."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def linf_random_start(x0: Tensor, eps: float) -> Tensor:
    """A uniform point of the L-inf ball around each input (before clipping to the bounds)."""
    return x0 + torch.empty_like(x0).uniform_(-eps, eps)


def linf_project(x: Tensor, x0: Tensor, eps: float) -> Tensor:
    """Back into the L-inf ball around x0."""
    return torch.minimum(torch.maximum(x, x0 - eps), x0 + eps)


def l2_random_start(x0: Tensor, eps: float) -> Tensor:
    """A uniform point of the L2 ball around each input (before clipping to the bounds)."""
    direction = torch.randn_like(x0)
    direction = direction / per_sample(direction.flatten(1).norm(dim=1).clamp_min(1e-12), x0)
    radius = eps * torch.rand(len(x0), device=x0.device) ** (1.0 / x0[0].numel())
    return x0 + direction * per_sample(radius, x0)


def l2_direction(grad: Tensor) -> Tensor:
    """The gradient scaled to unit L2 norm per sample."""
    return grad / per_sample(grad.flatten(1).norm(dim=1).clamp_min(1e-12), grad)


def l2_project(x: Tensor, x0: Tensor, eps: float) -> Tensor:
    """Radially back into the L2 ball around x0."""
    delta = x - x0
    norms = delta.flatten(1).norm(dim=1)
    factor = torch.where(norms > eps, eps / norms.clamp_min(1e-12), torch.ones_like(norms))
    return x0 + delta * per_sample(factor, delta)
