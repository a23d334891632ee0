"""RayS (Chen and Gu, KDD 2020, "RayS: A Ray Searching Method for Hard-label Adversarial
Attack"), L-inf: a decision-based attack, it reads only the model's top-1 class.

RayS searches over rays ``x0 + r s`` with ``s`` a sign vector (the directions to the L-inf
ball's corners) for the one that leaves the label at the smallest radius ``r``. It keeps the
best sign vector and its radius ``r*``; each step flips the signs of one block of pixels (in
flattened order: the whole image, then halves, quarters and so on, hierarchically) and asks
one query, the flipped ray at ``r*``: only if that is adversarial does a binary search find
the flipped ray's own radius, which then replaces ``r*``. Directions that do not help cost one
query. A point stops as soon as a query is adversarial within eps (the authors' early stop
when ``r*`` falls under eps). The binary search stops when its bracket is under
``tolerance / sqrt(d)`` in radius (the authors' 1e-3 on the L2 length of the ray, ``d`` the
input's size).

Batched over the points still searching, every query through an :class:`Oracle`: no point
ever gets more than ``max_queries``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from robustkit.attacks.queries import Oracle, OracleAttack
from robustkit.attacks.registry import register_attack
from robustkit.attacks.runs import per_sample
from robustkit.errors import RobustkitError
from robustkit.models.wrapper import BOUNDS


@register_attack("rays-linf")
@dataclass(frozen=True, kw_only=True)
class RaySLinf(OracleAttack):
    """RayS (Chen and Gu 2020): sign-flip ray search with hierarchical blocks and a binary
    search on the radius; labels only. Up to ``max_queries`` queries per point, the clean
    check included."""

    norm = "linf"
    access: ClassVar[str] = "labels"
    loss: ClassVar[str | None] = None
    gradient_free: ClassVar[bool] = True
    minimum_norm: ClassVar[bool] = False
    randomized_ok: ClassVar[bool] = False
    tolerance: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tolerance <= 0:
            raise RobustkitError(f"tolerance must be > 0, got {self.tolerance:g}")

    def _seek(self, oracle: Oracle, eps: float) -> None:
        x0 = oracle.points.x0
        n, dim = len(x0), x0[0].numel()
        tolerance = self.tolerance / math.sqrt(dim)
        widest = BOUNDS[1] - BOUNDS[0]  # a ray this long reaches the box's corner
        idx = oracle.open(torch.arange(n, device=x0.device)).nonzero()[:, 0]
        signs = torch.ones(len(idx), dim, device=x0.device, dtype=x0.dtype)
        radius = torch.full((len(idx),), math.inf, device=x0.device, dtype=x0.dtype)
        level, block = 0, 0
        while idx.numel():
            size = math.ceil(dim / 2**level)
            start, end = block * size, min(dim, (block + 1) * size)
            attempt = signs.clone()
            attempt[:, start:end] *= -1
            found = self._ray_radius(oracle, idx, attempt, radius.clamp(max=widest), tolerance)
            better = found < radius
            signs[better], radius[better] = attempt[better], found[better]
            block += 1
            if block == 2**level or end == dim:
                level, block = level + 1, 0
            keep = oracle.open(idx)
            idx, signs, radius = idx[keep], signs[keep], radius[keep]

    def _ray_radius(
        self, oracle: Oracle, idx: Tensor, signs: Tensor, best: Tensor, tolerance: float
    ) -> Tensor:
        """Per point, the radius (to ``tolerance``) at which its ray along ``signs`` turns
        adversarial if that is below ``best`` (checked with one query first), else inf."""
        x0 = oracle.points.x0[idx]
        direction = signs.view_as(x0)
        found = torch.full_like(best, math.inf)
        check = self._ray(x0, direction, best)
        hits = oracle.decide(idx, check)
        low, high = torch.zeros_like(best), torch.where(hits, best, found)
        while True:
            rows = (hits & (high - low > tolerance) & oracle.open(idx)).nonzero()[:, 0]
            if rows.numel() == 0:
                return high
            mid = (low[rows] + high[rows]) / 2
            adversarial = oracle.decide(idx[rows], self._ray(x0[rows], direction[rows], mid))
            high[rows] = torch.where(adversarial, mid, high[rows])
            low[rows] = torch.where(adversarial, low[rows], mid)

    @staticmethod
    def _ray(x0: Tensor, direction: Tensor, radius: Tensor) -> Tensor:
        """The points at ``radius`` along each ray, in the pixel box."""
        return (x0 + per_sample(radius, x0) * direction).clamp(*BOUNDS)
