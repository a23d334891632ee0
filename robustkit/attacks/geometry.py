"""The geometry of each norm's ball, one object per norm (``geometry("l2")``): the size of a
perturbation, random starts, the steepest-ascent step and the projections, per sample of a batch.

An attack picks its geometry by its ``norm``; the attack's own algorithm never branches on the
norm. The L1 ball meets the pixel box in a shape whose exact projection lives in
:mod:`robustkit.attacks.l1_ball`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor

from robustkit.attacks.l1_ball import (
    l1_ball_project,
    l1_box_project,
    l1_random_start,
    l1_sign_direction,
)
from robustkit.attacks.runs import per_sample
from robustkit.errors import RobustkitError


class Geometry(ABC):
    """One norm's ball around each input: ``dual`` is the dual norm's p (a linear function's
    change per unit of this norm is the dual norm of its gradient)."""

    name: str
    dual: float

    @abstractmethod
    def distance(self, delta: Tensor) -> Tensor:
        """The per-sample size of a batch of perturbations."""

    @abstractmethod
    def random_start(self, x0: Tensor, eps: float) -> Tensor:
        """A random point of the eps-ball around each input (before clipping to the box)."""

    @abstractmethod
    def random_delta(self, x0: Tensor, eps: float) -> Tensor:
        """The same random start as a perturbation of x0."""

    @abstractmethod
    def random_direction(self, like: Tensor) -> Tensor:
        """Random perturbations of unit size, one per sample."""

    @abstractmethod
    def direction(self, grad: Tensor) -> Tensor:
        """The steepest-ascent direction of unit size along ``grad``."""

    @abstractmethod
    def project(self, x: Tensor, x0: Tensor, eps: float) -> Tensor:
        """Back into the eps-ball around x0 (the caller clips to the box)."""

    @abstractmethod
    def project_delta(self, delta: Tensor, radius: Tensor) -> Tensor:
        """Each perturbation into its ball of radius ``radius`` (per sample; box ignored)."""

    def _unit(self, direction: Tensor) -> Tensor:
        return direction / per_sample(self.distance(direction).clamp_min(1e-12), direction)


class Linf(Geometry):
    """The cube: uniform starts, signed-gradient steps, coordinate-wise clipping."""

    name, dual = "linf", 1.0

    def distance(self, delta: Tensor) -> Tensor:
        return delta.flatten(1).abs().amax(dim=1)

    def random_start(self, x0: Tensor, eps: float) -> Tensor:
        return x0 + self.random_delta(x0, eps)

    def random_delta(self, x0: Tensor, eps: float) -> Tensor:
        return torch.empty_like(x0).uniform_(-eps, eps)

    def random_direction(self, like: Tensor) -> Tensor:
        return self._unit(torch.empty_like(like).uniform_(-1.0, 1.0))

    def direction(self, grad: Tensor) -> Tensor:
        return grad.sign()

    def project(self, x: Tensor, x0: Tensor, eps: float) -> Tensor:
        return torch.minimum(torch.maximum(x, x0 - eps), x0 + eps)

    def project_delta(self, delta: Tensor, radius: Tensor) -> Tensor:
        bound = per_sample(radius, delta)
        return torch.minimum(torch.maximum(delta, -bound), bound)


class L2(Geometry):
    """The Euclidean ball: uniform starts in the ball, normalised-gradient steps, radial
    projection."""

    name, dual = "l2", 2.0

    def distance(self, delta: Tensor) -> Tensor:
        return delta.flatten(1).norm(dim=1)

    def random_start(self, x0: Tensor, eps: float) -> Tensor:
        return x0 + self.random_delta(x0, eps)

    def random_delta(self, x0: Tensor, eps: float) -> Tensor:
        direction = self._unit(torch.randn_like(x0))
        radius = eps * torch.rand(len(x0), device=x0.device) ** (1.0 / x0[0].numel())
        return direction * per_sample(radius, x0)

    def random_direction(self, like: Tensor) -> Tensor:
        return self._unit(torch.randn_like(like))

    def direction(self, grad: Tensor) -> Tensor:
        return self._unit(grad)

    def project(self, x: Tensor, x0: Tensor, eps: float) -> Tensor:
        return x0 + self._shrink(x - x0, eps)

    def project_delta(self, delta: Tensor, radius: Tensor) -> Tensor:
        return self._shrink(delta, radius)

    def _shrink(self, delta: Tensor, radius: float | Tensor) -> Tensor:
        norms = self.distance(delta)
        factor = torch.where(norms > radius, radius / norms.clamp_min(1e-12), 1.0)
        return delta * per_sample(factor, delta)


class L1(Geometry):
    """The L1 ball within the pixel box: sparse starts, sign steps of unit L1 size, the exact
    projection onto ball and box (:mod:`robustkit.attacks.l1_ball`)."""

    name, dual = "l1", math.inf

    def distance(self, delta: Tensor) -> Tensor:
        return delta.flatten(1).abs().sum(dim=1)

    def random_start(self, x0: Tensor, eps: float) -> Tensor:
        return l1_random_start(x0, eps)

    def random_delta(self, x0: Tensor, eps: float) -> Tensor:
        return self.random_start(x0, eps) - x0

    def random_direction(self, like: Tensor) -> Tensor:
        return self._unit(torch.randn_like(like))

    def direction(self, grad: Tensor) -> Tensor:
        return l1_sign_direction(grad)

    def project(self, x: Tensor, x0: Tensor, eps: float) -> Tensor:
        return l1_box_project(x, x0, eps)

    def project_delta(self, delta: Tensor, radius: Tensor) -> Tensor:
        return l1_ball_project(delta, radius)


GEOMETRIES: dict[str, Geometry] = {g.name: g for g in (Linf(), L2(), L1())}


def geometry(norm: str) -> Geometry:
    """The geometry of ``norm`` ("linf", "l2" or "l1")."""
    if norm not in GEOMETRIES:
        raise RobustkitError(f"no ball geometry for norm {norm!r}: use 'linf', 'l2' or 'l1'")
    return GEOMETRIES[norm]
