"""HopSkipJump (Chen, Jordan and Wainwright, IEEE S&P 2020, "HopSkipJumpAttack: A
Query-Efficient Decision-Based Attack"), L2 and L-inf: a decision-based attack, it reads only
the model's top-1 class.

From an adversarial start (uniform noise, blended towards the input by a coarse binary search)
each iteration (1) binary-searches the boundary between the input and the current adversarial
(a blend for L2, a shrinking L-inf box for L-inf), (2) estimates the boundary's normal there
from the decisions on ``init_evals * sqrt(t + 1)`` random points around it (at most
``max_evals``), with a baseline that is the mean decision, and (3) steps along it (its sign for
L-inf) by a size that starts at the distance to the input over sqrt(t + 1) and halves until the
step lands on the adversarial side. The thresholds follow the authors' code: the binary search
stops within ``theta = gamma / d^1.5`` (L2) or ``gamma / d^2`` (L-inf) of the boundary, ``d``
the input's size, and the probes lie ``0.1`` (first iteration) or ``d * theta`` times the
distance (``sqrt(d) * theta`` for L2) from the boundary point.

Batched over the points still searching, every query through an :class:`Oracle`: a point is
broken, and stops, at its first query that is adversarial within eps (a binary-search midpoint
or a probe as much as a step), and never gets more than ``max_queries``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from robustkit.attacks.queries import Oracle, OracleAttack, rows_per_forward
from robustkit.attacks.registry import register_attack
from robustkit.attacks.runs import per_sample
from robustkit.errors import RobustkitError
from robustkit.models.wrapper import BOUNDS

START_TOLERANCE = 1e-3  # the blend search of the start, as in the authors' code
MAX_HALVINGS = 30  # a step search gives up after this many halvings (the point keeps its place)

# How a boundary point moves towards its input by a blend factor or box radius ``a``.
Shrink = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass
class _State:
    """The points still searching: their indices in the run, inputs and boundary points."""

    idx: Tensor
    x0: Tensor
    x_b: Tensor

    def keep(self, rows: Tensor) -> None:
        self.idx, self.x0, self.x_b = self.idx[rows], self.x0[rows], self.x_b[rows]


@dataclass(frozen=True, kw_only=True)
class HopSkipJump(OracleAttack):
    """HopSkipJump (Chen et al. 2020): boundary search, gradient-direction estimate at the
    boundary with a growing number of queries, geometric step search; labels only.

    ``init_tries``: uniform-noise draws (one query each) to find an adversarial start;
    ``init_evals`` and ``max_evals``: queries of the first and of any gradient estimate;
    ``gamma`` sets the binary search's tolerance (the authors' 1.0). Up to ``max_queries``
    queries per point, the clean check included.
    """

    access: ClassVar[str] = "labels"
    loss: ClassVar[str | None] = None
    gradient_free: ClassVar[bool] = True
    minimum_norm: ClassVar[bool] = False
    randomized_ok: ClassVar[bool] = False
    init_tries: int = 100
    init_evals: int = 100
    max_evals: int = 10_000
    gamma: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init_tries < 1 or self.init_evals < 1 or self.max_evals < self.init_evals:
            raise RobustkitError(
                "init_tries and init_evals must be >= 1 and max_evals >= init_evals, got "
                f"{self.init_tries}, {self.init_evals} and {self.max_evals}"
            )
        if self.gamma <= 0:
            raise RobustkitError(f"gamma must be > 0, got {self.gamma:g}")

    def _theta(self, dim: int) -> float:
        """The binary search's tolerance."""
        return self.gamma / (dim * math.sqrt(dim) if self.norm == "l2" else dim**2)

    def _seek(self, oracle: Oracle, eps: float) -> None:
        x0 = oracle.points.x0
        state = self._begin(oracle)
        if state is None:
            return
        dim = x0[0].numel()
        theta = self._theta(dim)
        self._boundary(oracle, state, theta)
        t = 0
        while True:
            dist = self.geometry.distance(state.x_b - state.x0)
            if t == 0:
                delta = torch.full_like(dist, 0.1 * (BOUNDS[1] - BOUNDS[0]))
            else:
                delta = (math.sqrt(dim) if self.norm == "l2" else dim) * theta * dist
            evals = min(int(self.init_evals * math.sqrt(t + 1)), self.max_evals)
            counts = (oracle.left(state.idx) - 1).clamp(min=0, max=evals)  # one left to step
            keep = counts > 0
            state.keep(keep)
            counts, dist, delta = counts[keep], dist[keep], delta[keep]
            if state.idx.numel() == 0:
                return
            grad = self._estimate(oracle, state, counts, delta)
            keep = oracle.open(state.idx)
            state.keep(keep)
            update = self.geometry.direction(grad[keep])
            self._step(oracle, state, update, dist[keep] / math.sqrt(t + 1))
            state.keep(oracle.open(state.idx))
            self._boundary(oracle, state, theta)
            t += 1

    def _begin(self, oracle: Oracle) -> _State | None:
        """Per point, uniform noise the model finds adversarial, blended towards the input to
        within START_TOLERANCE of the boundary; None if no point got one."""
        x0 = oracle.points.x0
        idx = oracle.open(torch.arange(len(x0), device=x0.device)).nonzero()[:, 0]
        start, found = x0[idx].clone(), torch.zeros(len(idx), dtype=torch.bool, device=x0.device)
        for _ in range(self.init_tries):
            todo = (~found & oracle.open(idx)).nonzero()[:, 0]
            if todo.numel() == 0:
                break
            noise = torch.rand_like(start[todo])
            adversarial = oracle.decide(idx[todo], noise)
            start[todo[adversarial]] = noise[adversarial]
            found[todo[adversarial]] = True
        found &= oracle.open(idx)
        if not bool(found.any()):
            return None
        state = _State(idx=idx[found], x0=x0[idx[found]], x_b=start[found])
        # the smallest blend (1 - a) x0 + a noise still adversarial, to START_TOLERANCE
        ones = torch.ones_like(state.idx, dtype=x0.dtype)
        high = self._bisect(oracle, state, _blend, ones, START_TOLERANCE)
        state.x_b = _blend(state.x0, state.x_b, high)
        state.keep(oracle.open(state.idx))
        return state

    def _boundary(self, oracle: Oracle, state: _State, theta: float) -> None:
        """Move each boundary point to the boundary between it and its input: a blend (L2) or
        the L-inf box (L-inf) around the input, to within theta (times the distance, L-inf)."""
        if self.norm == "l2":
            high = torch.ones_like(state.idx, dtype=state.x0.dtype)
            tolerance: float | Tensor = theta
            shrink = _blend
        else:
            high = self.geometry.distance(state.x_b - state.x0)
            tolerance = (high * theta).clamp(max=theta)
            shrink = _box
        high = self._bisect(oracle, state, shrink, high, tolerance)
        state.x_b = shrink(state.x0, state.x_b, high)
        state.keep(oracle.open(state.idx))

    def _bisect(
        self,
        oracle: Oracle,
        state: _State,
        shrink: Shrink,
        high: Tensor,
        tolerance: float | Tensor,
    ) -> Tensor:
        """Per point, the smallest ``a`` (to within ``tolerance``) whose ``shrink(x0, x_b, a)``
        the model finds adversarial, given that ``high`` is; binary search, one query per
        point and halving while its budget lasts."""
        low = torch.zeros_like(high)
        while True:
            searching = (high - low > tolerance) & oracle.open(state.idx)
            rows = searching.nonzero()[:, 0]
            if rows.numel() == 0:
                return high
            mid = (low[rows] + high[rows]) / 2
            if bool(((mid == low[rows]) | (mid == high[rows])).all()):  # float precision
                return high
            adversarial = oracle.decide(
                state.idx[rows], shrink(state.x0[rows], state.x_b[rows], mid)
            )
            high[rows] = torch.where(adversarial, mid, high[rows])
            low[rows] = torch.where(adversarial, low[rows], mid)

    def _estimate(self, oracle: Oracle, state: _State, counts: Tensor, delta: Tensor) -> Tensor:
        """The boundary's normal at each boundary point (towards the adversarial side), from
        the decisions on ``counts`` (per point) probes at distance ``delta`` around it."""
        x_b = state.x_b
        n = len(x_b)
        chunk = max(1, rows_per_forward(x_b) // max(n, 1))  # probes per point per forward
        weighted, total = torch.zeros_like(x_b), torch.zeros_like(x_b)
        decided = torch.zeros_like(delta)
        for first in range(0, int(counts.max()) if n else 0, chunk):
            width = min(chunk, int(counts.max()) - first)
            valid = torch.arange(first, first + width, device=x_b.device)[None, :] < counts[:, None]
            rows = valid.nonzero()  # (point, probe)
            owner = rows[:, 0]
            if self.norm == "l2":
                noise = torch.randn(len(rows), *x_b.shape[1:], device=x_b.device)
            else:
                noise = torch.rand(len(rows), *x_b.shape[1:], device=x_b.device) * 2 - 1
            noise = noise / per_sample(noise.flatten(1).norm(dim=1).clamp_min(1e-12), noise)
            step = per_sample(delta[owner], noise)
            probes = (x_b[owner] + step * noise).clamp(*BOUNDS)
            noise = (probes - x_b[owner]) / (step + 1e-8)
            sign = oracle.decide(state.idx[owner], probes).to(x_b.dtype) * 2 - 1
            weighted.index_add_(0, owner, per_sample(sign, noise) * noise)
            total.index_add_(0, owner, noise)
            decided.index_add_(0, owner, sign)
        used = counts.clamp(min=1).to(x_b.dtype)
        mean_sign = decided / used
        # the mean decision as a baseline, unless every probe agreed (then the mean probe)
        baseline = torch.where(mean_sign.abs() == 1, 0.0, mean_sign)
        grad = (weighted - per_sample(baseline, total) * total) / per_sample(used, total)
        return grad

    def _step(self, oracle: Oracle, state: _State, update: Tensor, size: Tensor) -> None:
        """Geometric step search: per point, the step along ``update`` from its boundary point,
        halved until it lands on the adversarial side (the point moves there; where it never
        does, the point stays and the next iteration estimates again with more probes)."""
        landed = torch.zeros(len(state.idx), dtype=torch.bool, device=update.device)
        size = size.clone()
        for _ in range(MAX_HALVINGS):
            rows = (~landed & oracle.open(state.idx)).nonzero()[:, 0]
            if rows.numel() == 0:
                break
            proposal = (state.x_b[rows] + per_sample(size[rows], update) * update[rows]).clamp(
                *BOUNDS
            )
            adversarial = oracle.decide(state.idx[rows], proposal)
            state.x_b[rows[adversarial]] = proposal[adversarial]
            landed[rows[adversarial]] = True
            size[rows[~adversarial]] /= 2


def _blend(x0: Tensor, x_b: Tensor, a: Tensor) -> Tensor:
    """(1 - a) x0 + a x_b: the L2 boundary search's line."""
    return x0 + per_sample(a, x0) * (x_b - x0)


def _box(x0: Tensor, x_b: Tensor, a: Tensor) -> Tensor:
    """x_b clipped to the L-inf box of radius a around x0: the L-inf boundary search's path."""
    radius = per_sample(a, x0)
    return torch.minimum(torch.maximum(x_b, x0 - radius), x0 + radius)


@register_attack("hsj-l2")
@dataclass(frozen=True, kw_only=True)
class HopSkipJumpL2(HopSkipJump):
    """HopSkipJump under an L2 budget: Gaussian probes, steps along the estimate."""

    norm = "l2"


@register_attack("hsj-linf")
@dataclass(frozen=True, kw_only=True)
class HopSkipJumpLinf(HopSkipJump):
    """HopSkipJump under an L-inf budget: uniform probes, steps along the estimate's sign."""

    norm = "linf"
