"""APGD under an L1 budget, as AutoAttack runs it (Croce & Hein, ICML 2021, "Mind the box:
l1-APGD for sparse adversarial attacks on image classifiers").

The L1 ball's steepest ascent moves one coordinate, and the ball meets the pixel box in a shape
whose corners are sparse, so L1-APGD steps along the signs of the gradient's largest coordinates
(a share k of them, set from the sparsity of the best point so far) scaled to unit L1 norm, and
projects exactly onto ball and box together. Every few steps (4% of the run) it resets the step
size to eps and goes back to its best point where that point became sparser (the search is
finding a smaller support), else shrinks the step by 1.5 (down to eps / 10). There is no momentum.
With ``large_reps`` a run spends 30% of its steps at 3 x eps, 30% at 2 x eps and the rest at eps,
each stage starting from the best point of the last projected onto its ball: the larger balls
find the support, the last one the adversarial. Only the last stage's points count.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from robustkit.attacks.apgd import AutoPGD, AutoPGDTargeted, Iterate
from robustkit.attacks.l1_ball import l1_sparsify
from robustkit.attacks.registry import register_attack
from robustkit.attacks.runs import Points, RunOutcome, per_sample, select_rows

CHECK_SHARE = 0.04  # the share of a stage's steps between two step-size checks
SPARSER = 0.95  # the best point counts as sparser when its support shrank below this share
SHRINK = 1.5  # step-size divisor, and the support share k = support / size / SHRINK
MIN_STEP = 0.1  # the smallest step, relative to the stage's eps
FIRST_SHARE = 0.2  # the support share of a cold start
LARGE_REPS = ((3.0, 0.3), (2.0, 0.3))  # (eps multiple, share of the steps) before the last stage


def large_reps_stages(steps: int) -> list[tuple[float, int]]:
    """(eps multiple, steps) per stage: 30% of the steps at 3 x eps, 30% at 2 x eps, the rest
    at eps; a run too short for three stages stays at eps."""
    early = [(scale, math.ceil(share * steps)) for scale, share in LARGE_REPS]
    rest = steps - sum(count for _, count in early)
    return [*early, (1.0, rest)] if rest >= 1 else [(1.0, steps)]


@dataclass(frozen=True, kw_only=True)
class _Stage(Iterate):
    """The points still in a stage, with their best point's loss and the stage's step."""

    best_loss: Tensor
    step_size: Tensor
    share: Tensor  # the share of coordinates the next step moves
    support: Tensor  # the support size of the best point at the last check


def _support(delta: Tensor) -> Tensor:
    return (delta != 0).flatten(1).sum(dim=1).float()


@dataclass(frozen=True, kw_only=True)
class _AutoPGDL1(AutoPGD):
    """L1-APGD: sparse sign steps, exact projection onto ball and box, AutoAttack's schedule;
    ``large_reps`` for the 3x / 2x / 1x eps stages (AutoAttack's standard L1 setting)."""

    norm = "l1"
    large_reps: bool = True

    def _single_run(
        self, model: nn.Module, points: Points, *, eps: float, restart: int, **settings: Any
    ) -> RunOutcome:
        stages = large_reps_stages(self.steps) if self.large_reps else [(1.0, self.steps)]
        out = RunOutcome.blank(points.x0)  # a success fools every judging pass: its share is 1
        x = self.geometry.random_start(points.x0, stages[0][0] * eps)
        for number, (scale, steps) in enumerate(stages):
            final = number == len(stages) - 1
            x = self._stage(model, points, x, scale * eps, steps, out=out if final else None)
        return out

    def _stage(
        self,
        model: nn.Module,
        points: Points,
        start: Tensor,
        eps: float,
        steps: int,
        *,
        out: RunOutcome | None,
    ) -> Tensor:
        """``steps`` steps in the eps-ball from ``start`` (projected); returns the best point
        of every input. With ``out`` (the last stage) successes count: the first of each point
        is written there and the point leaves; the others leave their best point."""
        size = points.x0[0].numel()
        state, loss, broken = self._enter(model, points, start, eps)
        best_x = state.x.clone()
        every = max(int(CHECK_SHARE * steps), 1)
        for step in range(steps + 1):
            if out is not None and bool(broken.any()):
                out.record(state.index[broken], state.x[broken], True, loss[broken])
                keep = ~broken
                state, loss = select_rows(state, keep), loss[keep]
                if state.index.numel() == 0:
                    return best_x
            if step == steps:
                break
            with torch.no_grad():
                ascent = self.geometry.direction(l1_sparsify(state.grad, state.share))
                moved = state.x + per_sample(state.step_size, state.x) * ascent
                x = self.geometry.project(moved, state.points.x0, eps)
            last = step == steps - 1
            loss, fooled, grad = self._evaluate(model, x, state.points, need_grad=not last)
            broken = fooled == 1
            state = self._observe(state, x, loss, state.grad if grad is None else grad)
            if (step + 1) % every == 0:
                state = self._check(state, eps, size)
        best_x[state.index] = state.best_x
        if out is not None:
            out.record(state.index, state.best_x, False, state.best_loss)
        return best_x

    def _enter(
        self, model: nn.Module, points: Points, start: Tensor, eps: float
    ) -> tuple[_Stage, Tensor, Tensor]:
        """A stage's state at ``start`` projected onto its ball, with the loss there and
        whether it fools every judging pass. A warm stage (``large_reps``) moves a share of
        the coordinates set by the support of its start, a cold one FIRST_SHARE of them."""
        x0 = points.x0
        n, size = len(x0), x0[0].numel()
        x = self.geometry.project(start, x0, eps)
        loss, fooled, grad = self._evaluate(model, x, points, need_grad=True)
        assert grad is not None  # asked for
        warm = self.large_reps
        support = _support(x - x0) if warm else torch.full((n,), float(size), device=x0.device)
        share = support / size / SHRINK if warm else torch.full_like(support, FIRST_SHARE)
        state = _Stage.start(
            points,
            x,
            grad,
            best_loss=loss,
            step_size=torch.full_like(loss, eps),
            share=share,
            support=support,
        )
        return state, loss, fooled == 1

    @staticmethod
    def _observe(state: _Stage, x: Tensor, loss: Tensor, grad: Tensor) -> _Stage:
        """Move to ``x`` and record it where its loss beats the best."""
        improved = loss > state.best_loss
        mask = per_sample(improved, x)
        return dataclasses.replace(
            state,
            x=x,
            grad=grad,
            best_x=torch.where(mask, x, state.best_x),
            best_grad=torch.where(mask, grad, state.best_grad),
            best_loss=torch.where(improved, loss, state.best_loss),
        )

    @staticmethod
    def _check(state: _Stage, eps: float, size: int) -> _Stage:
        """AutoAttack's L1 step-size check: where the best point got sparser, reset the step to
        eps and go back to it; elsewhere shrink the step. The next steps move a share of the
        coordinates set by the best point's support."""
        support = _support(state.best_x - state.points.x0)
        sparser = support / state.support.clamp_min(1.0) < SPARSER
        step = torch.where(sparser, eps, state.step_size / SHRINK).clamp(MIN_STEP * eps, eps)
        back = per_sample(sparser, state.x)
        return dataclasses.replace(
            state,
            x=torch.where(back, state.best_x, state.x),
            grad=torch.where(back, state.best_grad, state.grad),
            step_size=step,
            share=support / size / SHRINK,
            support=support,
        )


@register_attack("apgd-ce-l1")
@dataclass(frozen=True, kw_only=True)
class APGDCEL1(_AutoPGDL1):
    """L1-APGD on the cross-entropy loss (AutoAttack's first L1 attack, with large reps)."""


@register_attack("apgd-t-l1")
@dataclass(frozen=True, kw_only=True)
class APGDTL1(_AutoPGDL1, AutoPGDTargeted):
    """L1-APGD-T: the targeted DLR loss towards each runner-up class in turn, with large reps."""
