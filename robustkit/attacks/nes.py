"""NES: projected gradient ascent on a gradient estimated from the model's scores alone (Ilyas,
Engstrom, Athalye and Lin, ICML 2018, "Black-box adversarial attacks with limited queries and
information"), L-inf and L2.

Each iteration asks the model for the current point (did it break?) and for ``samples`` points
around it, in antithetic pairs ``x + sigma u``, ``x - sigma u`` with Gaussian ``u``; the natural
evolution strategies estimate of the loss gradient is the mean of
``(f(x + sigma u) - f(x - sigma u)) u / (2 sigma)``. As in the authors' code the estimate is
smoothed with momentum, and the step is its sign (L-inf) or its direction (L2), projected back
into the ball and the pixel box. The paper's query-limited setting (ImageNet, eps 0.05: 50
samples, sigma 0.001, step 0.01 = eps / 5, momentum 0.9) is scaled to MNIST-sized inputs: 20
samples (784 pixels need fewer than 268,203 for the same share of the gradient), sigma 0.01,
momentum 0.9, and a step of eps / 20: on ``zoo:mnist-cnn`` (97 correctly classified MNIST test
images, 1,000 queries, L-inf eps 0.3, one seed) eps / 5 left 47% of the points robust, eps / 10
32%, eps / 20 18% (Square: 0%); under L2 eps 3, eps / 20 left 23% and eps / 5 28%.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from robustkit.attacks.base import attack_objective
from robustkit.attacks.queries import Oracle, OracleAttack
from robustkit.attacks.registry import register_attack
from robustkit.attacks.runs import per_sample
from robustkit.errors import RobustkitError
from robustkit.models.wrapper import BOUNDS


@dataclass(frozen=True, kw_only=True)
class NES(OracleAttack):
    """Score-based gradient estimation and projected steps (Ilyas et al. 2018).

    ``samples`` model queries per iteration estimate the gradient (rounded down to antithetic
    pairs), one more checks the current point; ``sigma`` is the sampling scale in pixels,
    ``rel_stepsize`` the step as a share of eps, ``momentum`` the weight of the past estimates.
    ``loss``: ``"margin"`` (the best other logit minus the label's) or ``"ce"``; with
    ``targets``, the targeted versions. Up to ``max_queries`` queries per point, the clean check
    included; a point leaves at its first adversarial within eps.
    """

    access: ClassVar[str] = "scores"
    gradient_free: ClassVar[bool] = True
    minimum_norm: ClassVar[bool] = False
    randomized_ok: ClassVar[bool] = False
    loss: str = "margin"
    samples: int = 20
    sigma: float = 0.01
    rel_stepsize: float = 0.05
    momentum: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.samples < 2:
            raise RobustkitError(f"samples must be >= 2 (one antithetic pair), got {self.samples}")
        if self.sigma <= 0 or self.rel_stepsize <= 0 or not 0 <= self.momentum < 1:
            raise RobustkitError(
                "sigma and rel_stepsize must be > 0 and momentum in [0, 1), got "
                f"{self.sigma:g}, {self.rel_stepsize:g} and {self.momentum:g}"
            )
        if self.loss not in ("margin", "ce"):
            raise RobustkitError(f"unknown loss {self.loss!r}: use 'margin' or 'ce'")

    def _seek(self, oracle: Oracle, eps: float) -> None:
        low, high = BOUNDS
        geometry, points = self.geometry, oracle.points
        idx = oracle.open(torch.arange(len(points.x0), device=points.x0.device)).nonzero()[:, 0]
        x = points.x0[idx].clone()
        velocity = torch.zeros_like(x)
        step = self.rel_stepsize * eps
        while True:
            # each round: the pairs of the estimate, then one query to check the point it moves to
            pairs = ((oracle.left(idx) - 1) // 2).clamp(max=self.samples // 2)
            stay = pairs > 0
            idx, x, velocity, pairs = idx[stay], x[stay], velocity[stay], pairs[stay]
            if idx.numel() == 0:
                return
            estimate = self._estimate(oracle, idx, x, pairs)
            stay = oracle.open(idx)
            idx, x, velocity, estimate = idx[stay], x[stay], velocity[stay], estimate[stay]
            velocity = self.momentum * velocity + (1 - self.momentum) * estimate
            moved = x + step * geometry.direction(velocity)
            x = geometry.project(moved, points.x0[idx], eps).clamp(low, high)
            oracle.ask(idx, x)
            stay = oracle.open(idx)
            idx, x, velocity = idx[stay], x[stay], velocity[stay]

    def _estimate(self, oracle: Oracle, idx: Tensor, x: Tensor, pairs: Tensor) -> Tensor:
        """The NES gradient estimate at each point ``x`` from ``pairs`` antithetic pairs
        (per point; zero where none)."""
        low, high = BOUNDS
        most = int(pairs.max()) if pairs.numel() else 0
        if most == 0:
            return torch.zeros_like(x)
        noise = torch.randn(len(x), most, *x.shape[1:], device=x.device, dtype=x.dtype)
        valid = torch.arange(most, device=x.device)[None, :] < pairs[:, None]
        rows = valid.nonzero()  # (point, pair), point-major
        u = noise[rows[:, 0], rows[:, 1]]
        centre = x[rows[:, 0]]
        asked = torch.cat([(centre + self.sigma * u), (centre - self.sigma * u)]).clamp(low, high)
        owner = idx[rows[:, 0]].repeat(2)
        logits = oracle.ask(owner, asked)
        points = oracle.points
        targets = None if points.targets is None else points.targets[owner]
        loss = attack_objective(logits, points.labels[owner], targets, self.loss)
        plus, minus = loss.chunk(2)
        weights = ((plus - minus) / (2 * self.sigma)).nan_to_num(0.0)  # NaN: a point broken
        grad = torch.zeros_like(x)
        grad.index_add_(0, rows[:, 0], per_sample(weights, u) * u)
        return grad / per_sample(pairs.clamp(min=1).to(x.dtype), x)


@register_attack("nes-linf")
@dataclass(frozen=True, kw_only=True)
class NESLinf(NES):
    """NES under an L-inf budget: signed steps, coordinate-wise projection."""

    norm = "linf"


@register_attack("nes-l2")
@dataclass(frozen=True, kw_only=True)
class NESL2(NES):
    """NES under an L2 budget: normalised steps, radial projection."""

    norm = "l2"
