"""FAB-T under an L1 budget: the boundary projections of FAB (``robustkit.attacks.fab``) in the
L1 norm, as AutoAttack's FAB runs them.

The smallest L1 displacement that moves a linear function by a given amount spends it on the
coordinate with the largest weight first, then, once that coordinate meets the pixel box, on the
next: a greedy fill in decreasing |w_i|, which a sort and a cumulative sum find for every row at
once.

A coordinate whose weight is negligible (|w_i| <= 1e-8, AutoAttack's cut-off) never moves: on a
ReLU network a few pixels per image carry gradients of 1e-9 or so, and where the plane
lies beyond the box's reach (FAB's first steps from the clean input) moving every coordinate that
helps at all would push each of them across the whole box, up to 1 of L1 norm apiece for no
progress. With the cut-off our runs take AutoAttack's steps (``benchmarks/fab_l1_vs_autoattack.py``
compares them image by image); without it they parted from the first step on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from robustkit.attacks.fab import _FABTargeted, oriented_change
from robustkit.attacks.registry import register_attack

NEGLIGIBLE_WEIGHT = 1e-8  # |w_i| at or below which a coordinate is left where it is


@register_attack("fab-t-l1")
@dataclass(frozen=True, kw_only=True)
class FABTargetedL1(_FABTargeted):
    """FAB-T under L1, AutoAttack's L1 configuration: 9 target classes, 100 steps."""

    norm = "l1"

    def _project(self, points: Tensor, weight: Tensor, change: Tensor) -> Tensor:
        """Per row, the smallest L1 displacement d with weight . d = change and points + d
        inside the box: the coordinates filled to the box in decreasing |w_i|, the last one
        partly; where the box makes that impossible, every coordinate that helps at the box.
        Coordinates of negligible weight stay put."""
        weight, change, magnitude, room = oriented_change(points, weight, change)
        room = torch.where(magnitude > NEGLIGIBLE_WEIGHT, room, 0.0)
        order = magnitude.argsort(dim=1, descending=True)
        gains = (magnitude * room).gather(1, order)  # progress of each coordinate filled
        reach = gains.cumsum(dim=1)
        full = torch.searchsorted(reach, change[:, None].contiguous()).squeeze(1)
        feasible = full < reach.shape[1]
        last = full.clamp_max(reach.shape[1] - 1)
        filled = reach.gather(1, (last - 1).clamp_min(0)[:, None]).squeeze(1)
        done = torch.where(full > 0, filled, 0.0)
        weight_last = magnitude.gather(1, order).gather(1, last[:, None]).squeeze(1)
        partial = (change - done) / weight_last.clamp_min(1e-30)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
        step = torch.where(rank < last[:, None], room, 0.0)
        step = torch.where(rank == last[:, None], torch.minimum(partial[:, None], room), step)
        step = torch.where(feasible[:, None], step, room)
        return weight.sign() * step
