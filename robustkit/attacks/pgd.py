"""Projected gradient descent (L-inf and L2) and FGSM, its one-step special case."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from robustkit.attacks.base import Attack, attack_objective, is_adversarial, require_counts
from robustkit.attacks.registry import register_attack
from robustkit.attacks.runs import Points, RunOutcome, select_rows
from robustkit.models.wrapper import BOUNDS

# The default step: max(DEFAULT_STEP_BUDGET / steps, DEFAULT_MIN_REL_STEPSIZE) x eps.
DEFAULT_STEP_BUDGET = 2.5
DEFAULT_MIN_REL_STEPSIZE = 0.1


@dataclass(frozen=True)
class _Iterate:
    """The points still in a run (``index``: their position in it), their iterate and the last
    ascent direction (None before the first step)."""

    index: Tensor
    points: Points
    x: Tensor
    grad: Tensor | None = None


@dataclass(frozen=True, kw_only=True)
class GradientAttack(Attack):
    """Iterated signed/normalised gradient steps projected onto the eps-ball and pixel bounds.

    Per sample it keeps the first successful iterate (early stop: a broken point leaves the
    batch) and, over restarts, the first success or else the highest-objective adversarial.
    Restarts run only on points still unbroken.
    """

    iterative: ClassVar[bool] = True
    steps: int = 40
    rel_stepsize: float | None = None
    abs_stepsize: float | None = None
    random_start: bool = True
    restarts: int = 1
    loss: str = "ce"
    early_stop: bool = True

    def __post_init__(self) -> None:
        require_counts(self, "steps", "restarts")

    def stepsize(self, eps: float) -> float:
        """The absolute step size: given outright, else relative to eps, by default
        max(2.5 / steps, 0.1) x eps. Madry et al.'s 2.5 / steps lets a few steps cross the ball;
        the floor keeps long runs from stepping smaller than helps (benchmarks/pgd_stepsize.py:
        from 25 steps up 0.1 breaks more points, and at 100 steps Madry's 0.025 is weaker than
        foolbox's default 0.033)."""
        if self.abs_stepsize is not None:
            return self.abs_stepsize
        if self.rel_stepsize is not None:
            return self.rel_stepsize * eps
        return max(DEFAULT_STEP_BUDGET / self.steps, DEFAULT_MIN_REL_STEPSIZE) * eps

    def _direction(self, grad: Tensor, previous: Tensor | None) -> Tensor:
        """The ascent direction from this step's gradient and the last step's direction (None at
        the first step): the gradient itself here; attacks with momentum accumulate it."""
        return grad

    def _ascent(self, x: Tensor, grad: Tensor, stepsize: float) -> Tensor:
        """One step up the gradient, of ``stepsize`` in the attack's norm."""
        return x + stepsize * self.geometry.direction(grad)

    def _single_run(
        self, model: nn.Module, points: Points, *, eps: float, restart: int, **settings: Any
    ) -> RunOutcome:
        """One run from one start point; finished points are written out and leave the batch."""
        out = RunOutcome.blank(points.x0)
        low, high = BOUNDS
        stepsize = self.stepsize(eps)
        x0 = points.x0
        x = (
            self.geometry.random_start(x0, eps).clamp(low, high)
            if self.random_start
            else x0.clone()
        )
        state = _Iterate(index=torch.arange(len(x0), device=x0.device), points=points, x=x)
        for step in range(self.steps + 1):
            last = step == self.steps
            state, done = self._evaluate(model, state, need_grad=not last, out=out)
            if done and state.index.numel() == 0:
                break
            if state.grad is not None:
                with torch.no_grad():
                    x = self._ascent(state.x, state.grad, stepsize)
                    x = self.geometry.project(x, state.points.x0, eps).clamp(low, high)
                state = dataclasses.replace(state, x=x)
        return out

    def _evaluate(
        self, model: nn.Module, state: _Iterate, *, need_grad: bool, out: RunOutcome
    ) -> tuple[_Iterate, bool]:
        """The loss and gradient at the iterate; the points that finish here (broken, with early
        stop; all, without a gradient to follow) are written to ``out`` and leave the state.
        Returns the state and whether any point left."""
        points, x = state.points, state.x.requires_grad_(need_grad)
        with torch.set_grad_enabled(need_grad):
            logits = model(x)
            objective = attack_objective(logits, points.labels, points.targets, self.loss)
        broken = is_adversarial(logits, points.labels, points.targets)
        grad = None
        if need_grad:
            grad = self._direction(torch.autograd.grad(objective.sum(), x)[0], state.grad)
        state = dataclasses.replace(state, x=x.detach(), grad=grad)
        done = broken if need_grad else torch.ones_like(broken)
        if (self.early_stop or not need_grad) and bool(done.any()):
            out.record(state.index[done], state.x[done], broken[done], objective.detach()[done])
            return select_rows(state, ~done), True
        return state, False


@register_attack("pgd-linf")
@dataclass(frozen=True, kw_only=True)
class PGDLinf(GradientAttack):
    """PGD under an L-inf budget (Madry et al. 2018): 40 steps of 0.1 x eps by default."""

    norm = "linf"


@register_attack("fgsm")
@dataclass(frozen=True, kw_only=True)
class FGSM(GradientAttack):
    """Fast gradient sign method (Goodfellow et al. 2015): one signed step of size eps."""

    norm = "linf"
    iterative = False
    steps: int = 1
    rel_stepsize: float = 1.0
    random_start: bool = False


@register_attack("pgd-l2")
@dataclass(frozen=True, kw_only=True)
class PGDL2(GradientAttack):
    """PGD under an L2 budget: 40 steps of 0.1 x eps along the normalised gradient by default."""

    norm = "l2"
