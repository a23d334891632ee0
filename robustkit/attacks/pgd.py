"""Projected gradient descent (L-inf and L2) and FGSM, its one-step special case."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from robustkit.attacks.base import Attack, AttackResult, attack_objective, is_adversarial
from robustkit.attacks.geometry import (
    l2_direction,
    l2_project,
    l2_random_start,
    linf_project,
    linf_random_start,
)
from robustkit.attacks.registry import register_attack
from robustkit.errors import RobustkitError
from robustkit.models.wrapper import BOUNDS

# The default step: max(DEFAULT_STEP_BUDGET / steps, DEFAULT_MIN_REL_STEPSIZE) x eps.
DEFAULT_STEP_BUDGET = 2.5
DEFAULT_MIN_REL_STEPSIZE = 0.1


@dataclass(frozen=True, kw_only=True)
class _RunOutcome:
    x_adv: Tensor
    success: Tensor
    pred: Tensor
    objective: Tensor


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
        if self.steps < 1 or self.restarts < 1:
            raise RobustkitError("steps and restarts must be >= 1")

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

    @abstractmethod
    def _random_start(self, x0: Tensor, eps: float) -> Tensor:
        """A random point of the eps-ball around x0 (before clipping to the bounds)."""

    def _direction(self, grad: Tensor, previous: Tensor | None) -> Tensor:
        """The ascent direction from this step's gradient and the last step's direction (None at
        the first step): the gradient itself here; attacks with momentum accumulate it."""
        return grad

    @abstractmethod
    def _ascent(self, x: Tensor, grad: Tensor, stepsize: float) -> Tensor:
        """One step up the gradient."""

    @abstractmethod
    def _project(self, x: Tensor, x0: Tensor, eps: float) -> Tensor:
        """Back into the eps-ball around x0 (the caller clips to the bounds)."""

    def _run(
        self,
        model: nn.Module,
        inputs: Tensor,
        labels: Tensor,
        *,
        eps: float,
        targets: Tensor | None,
    ) -> AttackResult:
        x_adv = inputs.clone()
        success = torch.zeros(len(inputs), dtype=torch.bool, device=inputs.device)
        pred = torch.empty(len(inputs), dtype=torch.long, device=inputs.device)
        best = torch.full((len(inputs),), float("-inf"), device=inputs.device)
        for _ in range(self.restarts):
            todo = (~success).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            run = self._single_run(
                model, inputs[todo], labels[todo], None if targets is None else targets[todo], eps
            )
            better = run.success | (run.objective > best[todo])
            chosen = todo[better]
            x_adv[chosen] = run.x_adv[better]
            success[chosen] = run.success[better]
            pred[chosen] = run.pred[better]
            best[chosen] = run.objective[better]
        return AttackResult(x_adv=x_adv, success=success, adv_pred=pred)

    def _single_run(
        self, model: nn.Module, x0: Tensor, labels: Tensor, targets: Tensor | None, eps: float
    ) -> _RunOutcome:
        """One run from one start point; finished points are written out and leave the batch."""
        n = len(x0)
        out_x = x0.clone()
        out_success = torch.zeros(n, dtype=torch.bool, device=x0.device)
        out_pred = torch.empty(n, dtype=torch.long, device=x0.device)
        out_objective = torch.empty(n, device=x0.device)
        low, high = BOUNDS
        stepsize = self.stepsize(eps)
        x = self._random_start(x0, eps).clamp(low, high) if self.random_start else x0.clone()
        alive = torch.arange(n, device=x0.device)
        grad: Tensor | None = None
        for step in range(self.steps + 1):
            last = step == self.steps
            x.requires_grad_(not last)
            with torch.set_grad_enabled(not last):
                logits = model(x)
                objective = attack_objective(logits, labels, targets, self.loss)
            broken = is_adversarial(logits, labels, targets)
            if last:
                done: Tensor | None = torch.ones_like(broken)
            else:
                done = broken if self.early_stop else None
            grad = (
                None if last else self._direction(torch.autograd.grad(objective.sum(), x)[0], grad)
            )
            if done is not None and bool(done.any()):
                idx = alive[done]
                out_x[idx] = x.detach()[done]
                out_success[idx] = broken[done]
                out_pred[idx] = logits.argmax(dim=1)[done]
                out_objective[idx] = objective.detach()[done]
                keep = ~done
                alive, x0, labels = alive[keep], x0[keep], labels[keep]
                x = x.detach()[keep]
                targets = None if targets is None else targets[keep]
                grad = None if grad is None else grad[keep]
                if alive.numel() == 0:
                    break
            if grad is not None:
                with torch.no_grad():
                    x = self._project(self._ascent(x.detach(), grad, stepsize), x0, eps)
                    x = x.clamp(low, high)
        return _RunOutcome(x_adv=out_x, success=out_success, pred=out_pred, objective=out_objective)


@dataclass(frozen=True, kw_only=True)
class _LinfGeometry(GradientAttack):
    def _random_start(self, x0: Tensor, eps: float) -> Tensor:
        return linf_random_start(x0, eps)

    def _ascent(self, x: Tensor, grad: Tensor, stepsize: float) -> Tensor:
        return x + stepsize * grad.sign()

    def _project(self, x: Tensor, x0: Tensor, eps: float) -> Tensor:
        return linf_project(x, x0, eps)


@register_attack("pgd-linf")
@dataclass(frozen=True, kw_only=True)
class PGDLinf(_LinfGeometry):
    """PGD under an L-inf budget (Madry et al. 2018): 40 steps of 0.1 x eps by default."""

    norm = "linf"


@register_attack("fgsm")
@dataclass(frozen=True, kw_only=True)
class FGSM(_LinfGeometry):
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

    def _random_start(self, x0: Tensor, eps: float) -> Tensor:
        return l2_random_start(x0, eps)

    def _ascent(self, x: Tensor, grad: Tensor, stepsize: float) -> Tensor:
        return x + stepsize * l2_direction(grad)

    def _project(self, x: Tensor, x0: Tensor, eps: float) -> Tensor:
        return l2_project(x, x0, eps)
