"""The bookkeeping the attack base owns: restarts on unbroken points, the best outcome kept per
point, fresh scoring of what is returned, the budget check, and one geometry per norm."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from robustkit.attacks import Attack, AttackResult
from robustkit.attacks.base import BudgetError
from robustkit.attacks.geometry import GEOMETRIES, geometry
from robustkit.attacks.runs import Kept, Points, RunOutcome, select_rows
from robustkit.errors import RobustkitError


class FirstPixel(nn.Module):
    """Two classes: 1 where the first pixel exceeds 0.5, else 0."""

    def forward(self, x: Tensor) -> Tensor:
        score = x.flatten(1)[:, :1] - 0.5
        return torch.cat([-score, score], dim=1)


@dataclass(frozen=True, kw_only=True)
class Scripted(Attack):
    """Run ``r`` moves the first pixel of its points by ``moves[r]`` (clipped to eps) and scores
    ``objectives[r]``; success is the model's verdict, or everywhere if ``lie``. Records each
    run's point count."""

    norm = "linf"
    moves: tuple[float, ...] = (0.0,)
    objectives: tuple[float | None, ...] = (0.0,)
    lie: bool = False
    restarts: int = 1
    sizes: list[int] = field(default_factory=list, compare=False)

    def _single_run(
        self, model: nn.Module, points: Points, *, eps: float, restart: int, **settings: Any
    ) -> RunOutcome:
        self.sizes.append(len(points.x0))
        x = points.x0.clone()
        x[:, 0, 0, 0] += min(self.moves[restart], eps)
        x = x.clamp(0, 1)
        success = model(x).argmax(dim=1) != points.labels
        objective = self.objectives[restart]
        return RunOutcome(
            x_adv=x,
            success=success | self.lie,
            objective=None if objective is None else torch.full((len(x),), objective),
        )


@pytest.fixture
def grey() -> tuple[Tensor, Tensor]:
    return torch.full((4, 1, 2, 2), 0.4), torch.zeros(4, dtype=torch.long)


def test_restarts_run_on_unbroken_points_and_keep_the_best(grey):
    x, y = grey
    x[:2, 0, 0, 0] = 0.45  # close enough that a move of 0.1 crosses 0.5
    attack = Scripted(moves=(0.1, 0.05, 0.0), objectives=(1.0, 2.0, 0.5), restarts=3)
    result = attack(FirstPixel(), x, y, eps=0.1)
    assert attack.sizes == [4, 2, 2]  # the two points the first run broke take no restart
    assert result.success.tolist() == [True, True, False, False]
    # the unbroken points keep the second run's move: its objective (2.0) was the highest
    assert torch.allclose(result.x_adv[2:, 0, 0, 0], torch.tensor([0.45, 0.45]))


def test_what_is_returned_is_scored_afresh_whatever_a_run_claims(grey):
    x, y = grey
    result = Scripted(lie=True)(FirstPixel(), x, y, eps=0.05)
    assert not result.success.any()  # the run claimed success, the model disagrees
    assert torch.equal(result.adv_pred, torch.zeros(4, dtype=torch.long))


def test_an_adversarial_outside_the_budget_is_a_bug_that_raises(grey):
    x, y = grey

    @dataclass(frozen=True, kw_only=True)
    class Overshoots(Scripted):
        def _single_run(self, *args: Any, **kwargs: Any) -> RunOutcome:
            run = super()._single_run(*args, **kwargs)
            run.x_adv[1, 0, 1, 1] += 0.2  # past eps = 0.1
            return run

    with pytest.raises(BudgetError, match=r"1 of 4 adversarials .* linf budget eps=0.1"):
        Overshoots()(FirstPixel(), x, y, eps=0.1)


def test_an_adversarial_outside_the_pixel_box_raises_even_without_a_ball():
    @dataclass(frozen=True, kw_only=True)
    class Bright(Attack):
        norm = "gaussian"

        def _run(self, model: nn.Module, points: Points, eps: float) -> AttackResult:
            labels = points.labels
            return AttackResult(x_adv=points.x0 + 1.0, success=labels == labels, adv_pred=labels)

    x, y = torch.full((2, 1, 2, 2), 0.5), torch.zeros(2, dtype=torch.long)
    with pytest.raises(BudgetError, match="pixel box"):
        Bright()(FirstPixel(), x, y, eps=0)


def test_rounding_past_eps_is_no_violation(grey):
    x, y = grey
    result = Scripted(moves=(0.1 + 1e-7,))(FirstPixel(), x, y, eps=0.1 + 1e-7)
    assert torch.allclose(result.x_adv[:, 0, 0, 0], torch.full((4,), 0.5))


def test_kept_ranks_success_then_share_then_objective_and_without_objective_replaces():
    kept = Kept.start(torch.zeros(3, 1, 1, 1))
    todo = torch.tensor([0, 1, 2])

    def run(value: float, success: list[bool], objective: list[float] | None, **kw: Any) -> None:
        share = kw.get("share")
        kept.update(
            todo,
            RunOutcome(
                x_adv=torch.full((3, 1, 1, 1), value),
                success=torch.tensor(success),
                objective=None if objective is None else torch.tensor(objective),
                share=None if share is None else torch.tensor(share),
            ),
        )

    run(1.0, [False, False, False], [0.0, 0.0, 0.0])
    run(2.0, [False, True, False], [-1.0, -5.0, 1.0])  # success beats a higher objective
    assert kept.x_adv.flatten().tolist() == [1.0, 2.0, 2.0]
    run(3.0, [False, False, False], [-2.0, 9.0, 0.5], share=[0.5, 0.9, 0.0])
    assert kept.x_adv.flatten().tolist() == [3.0, 2.0, 2.0]  # a larger share beats the objective
    run(4.0, [False, False, False], None)  # no objective: the latest run stands everywhere
    assert kept.x_adv.flatten().tolist() == [4.0, 4.0, 4.0]


def test_select_rows_cuts_every_tensor_nested_or_not():
    @dataclass(frozen=True)
    class State:
        points: Points
        x: Tensor
        grad: Tensor | None
        steps: int

    points = Points(x0=torch.arange(4.0), labels=torch.arange(4), targets=None)
    state = select_rows(State(points, torch.arange(4.0) * 2, None, 7), torch.tensor([1, 3]))
    assert state.points.x0.tolist() == [1.0, 3.0] and state.points.labels.tolist() == [1, 3]
    assert state.x.tolist() == [2.0, 6.0] and state.grad is None and state.steps == 7


@pytest.mark.parametrize("norm", sorted(GEOMETRIES))
def test_each_geometry_starts_steps_and_projects_within_its_ball(norm):
    ball = geometry(norm)
    torch.manual_seed(0)
    x0, eps = torch.rand(8, 3, 4, 4) * 0.5 + 0.25, 0.3
    start = ball.random_start(x0, eps)
    assert (ball.distance(start - x0) <= eps * (1 + 1e-5)).all()
    far = x0 + torch.randn_like(x0)
    assert (ball.distance(ball.project(far, x0, eps) - x0) <= eps * (1 + 1e-5)).all()
    assert torch.allclose(ball.distance(ball.direction(torch.randn_like(x0))), torch.ones(8))
    assert torch.allclose(ball.distance(ball.random_direction(x0)), torch.ones(8))
    radius = torch.linspace(0.1, 0.8, 8)
    assert (ball.distance(ball.project_delta(far - x0, radius)) <= radius * (1 + 1e-5)).all()


def test_a_norm_without_a_ball_has_no_geometry():
    with pytest.raises(RobustkitError, match="no ball geometry for norm 'gaussian'"):
        geometry("gaussian")
