"""The geometry of the L1 ball intersected with the pixel box, per sample of a batch: the exact
Euclidean projection onto it, a random start inside it, and APGD's sparse ascent direction.

The projection of ``y`` onto {d : ||d||_1 <= eps, every coordinate within its box room} keeps each
coordinate's sign and soft-thresholds its size: d_i = sign(y_i) min(max(|y_i| - lam, 0), room_i)
with lam >= 0 the smallest threshold that brings the L1 norm down to eps (Duchi et al. 2008 for
the ball alone; the box only caps each coordinate). The norm is piecewise linear and
non-increasing in lam, with kinks where a coordinate leaves its cap (|y_i| - room_i) and where it
reaches zero (|y_i|), so sorting the kinks and accumulating the slopes finds lam exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from robustkit.attacks.runs import per_sample
from robustkit.models.wrapper import BOUNDS


def l1_threshold(size: Tensor, room: Tensor, eps: Tensor) -> Tensor:
    """Per row of ``size`` (N, D, non-negative), the smallest lam >= 0 with
    sum_i min(max(size_i - lam, 0), room_i) <= eps (N,)."""
    capped = torch.minimum(size, room).sum(dim=1)
    starts = (size - room).clamp_min(0.0)  # below this lam the coordinate sits at its cap
    kinks, order = torch.cat([starts, size], dim=1).sort(dim=1)
    events = torch.cat([torch.ones_like(size), -torch.ones_like(size)], dim=1).gather(1, order)
    active = events.cumsum(dim=1)  # coordinates on their slope right after each kink
    drops = (active[:, :-1] * kinks.diff(dim=1)).cumsum(dim=1)
    norms = torch.cat([capped[:, None], capped[:, None] - drops], dim=1).cummin(dim=1).values
    after = torch.searchsorted(-norms, -eps[:, None].contiguous()).clamp(1, norms.shape[1] - 1)
    before = after - 1
    slope = active.gather(1, before).clamp_min(1.0)
    lam = kinks.gather(1, before) + (norms.gather(1, before) - eps[:, None]) / slope
    return torch.where(capped > eps, lam.squeeze(1), torch.zeros_like(capped))


def l1_box_project(x: Tensor, x0: Tensor, eps: float | Tensor) -> Tensor:
    """The point of the L1 ball of radius eps (a float or one per sample) around x0, within the
    pixel box, closest to x in L2."""
    low, high = BOUNDS
    delta = (x - x0).flatten(1)
    flat0 = x0.flatten(1)
    room = torch.where(delta > 0, high - flat0, flat0 - low).clamp_min(0.0)
    radius = torch.as_tensor(eps, dtype=delta.dtype, device=delta.device).expand(len(delta))
    size = delta.abs()
    lam = l1_threshold(size, room, radius)
    moved = delta.sign() * torch.minimum((size - lam[:, None]).clamp_min(0.0), room)
    # rounding can leave the norm a hair above eps: shrink towards x0 (stays in the box)
    norms = moved.abs().sum(dim=1)
    moved = moved * torch.where(norms > radius, radius / norms.clamp_min(1e-30), 1.0)[:, None]
    return (flat0 + moved).view_as(x0).clamp(low, high)


def l1_ball_project(delta: Tensor, radius: Tensor) -> Tensor:
    """Each perturbation projected onto its L1 ball (radius per sample), the box ignored."""
    flat = delta.flatten(1)
    size = flat.abs()
    lam = l1_threshold(size, torch.full_like(size, torch.inf), radius)
    return (flat.sign() * (size - lam[:, None]).clamp_min(0.0)).view_as(delta)


def l1_random_start(x0: Tensor, eps: float) -> Tensor:
    """AutoAttack's L1 start: Gaussian noise projected onto the L1 ball within the box (sparse,
    as soft-thresholding zeroes most coordinates)."""
    return l1_box_project(x0 + torch.randn_like(x0), x0, eps)


def l1_sparsify(grad: Tensor, share: Tensor) -> Tensor:
    """The gradient with all but its largest coordinates (a ``share`` of them per sample, at
    least one) set to zero: the coordinates APGD's L1 step moves."""
    flat = grad.flatten(1).abs()
    count = flat.shape[1]
    rank = ((1.0 - share) * count).clamp(0, count - 1).long()
    threshold = flat.sort(dim=1).values.gather(1, rank[:, None]).squeeze(1)
    return grad * (grad.abs() >= per_sample(threshold, grad))


def l1_sign_direction(grad: Tensor) -> Tensor:
    """The signs of the gradient's non-zero coordinates, scaled to unit L1 norm."""
    signs = grad.sign()
    return signs / per_sample(signs.flatten(1).abs().sum(dim=1).clamp_min(1e-12), grad)
