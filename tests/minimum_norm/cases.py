"""Models with known minimal adversarial distances, shared by the minimum-norm attacks' tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robustkit.attacks import AttackResult

DUAL = {"linf": 1.0, "l2": 2.0}  # the dual norm's p, for the closed-form distance
LARGE_EPS = {"linf": 0.5, "l2": 5.0}


class BlockLinear(nn.Module):
    """A linear classifier on 1 x 8 x 8 inputs whose class weights have disjoint supports of 16
    pixels with entries +-scale: every difference w_y - w_j then has the same L1 and L2 norm, so
    in either norm the nearest boundary is the runner-up class's: the class FAB-T tries first and
    FMN's rival."""

    def __init__(self, classes: int = 4, scale: float = 0.5) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        pixels = 64
        signs = torch.randint(0, 2, (classes, pixels), generator=gen) * 2.0 - 1.0
        block = torch.arange(pixels)[None, :] // (pixels // classes)
        support = block == torch.arange(classes)[:, None]
        self.weight = nn.Parameter(signs * support * scale)
        self.bias = nn.Parameter(0.1 * torch.randn(classes, generator=gen))
        self.seen = 0

    def forward(self, x: Tensor) -> Tensor:
        self.seen += len(x)
        return x.flatten(1) @ self.weight.T + self.bias


def closed_form_radius(model: BlockLinear, x: Tensor, y: Tensor, norm: str) -> Tensor:
    """Per sample, min over j != y of |(w_y - w_j).x + b_y - b_j| / ||w_y - w_j||_dual, and a
    check that the minimiser stays inside [0, 1] (so the box plays no part)."""
    with torch.no_grad():
        diff = model.weight[y][:, None, :] - model.weight[None, :, :]  # (n, classes, pixels)
        gap = (diff * x.flatten(1)[:, None, :]).sum(-1) + model.bias[y][:, None] - model.bias
        scale = diff.norm(p=DUAL[norm], dim=-1)
        dist = (gap / scale).scatter(1, y[:, None], torch.inf)
        radius, nearest = dist.min(dim=1)
        rows = torch.arange(len(x))
        direction = diff[rows, nearest]
        if norm == "linf":
            step = radius[:, None] * direction.sign()
        else:
            step = radius[:, None] * direction / direction.norm(dim=1, keepdim=True)
        moved = x.flatten(1) - step
        assert moved.min() > 0 and moved.max() < 1, "the box is active: not a closed-form case"
    return radius


def radius_of(result: AttackResult) -> Tensor:
    """The radius a minimum-norm attack must report."""
    assert result.radius is not None
    return result.radius
