"""Targeted Fast Adaptive Boundary attack, FAB-T (Croce & Hein, ICML 2020, "Minimally distorted
adversarial examples with a fast adaptive boundary attack"), as AutoAttack runs it.

FAB looks for the smallest adversarial rather than any adversarial within a budget: it linearises
the decision boundary between the label and a target class, jumps to the projection of both the
current iterate and the original input onto that hyperplane (within the pixel box), biases the
step towards the original, and after each success steps back towards the original to shrink the
perturbation. The targeted version runs once per runner-up class, which needs one gradient per
step instead of one per class.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from robustkit.attacks.base import (
    Attack,
    is_adversarial,
    perturbation_norm,
    require_counts,
    runner_up_classes,
)
from robustkit.attacks.geometry import per_sample
from robustkit.attacks.registry import register_attack
from robustkit.attacks.runs import Kept, Points, RunOutcome
from robustkit.errors import RobustkitError
from robustkit.models.wrapper import BOUNDS

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class _FABTargeted(Attack):
    """FAB-T: per target class (the ``num_targets`` highest clean logits other than the label),
    ``restarts`` runs of ``steps`` boundary-projection steps; the first run starts at the input,
    later ones at a random point of the eps/2-sphere.

    Within a run every point keeps shrinking its best adversarial; a point whose best lies within
    eps takes no further target runs or restarts. With ``stop_within_eps`` (a fixed-budget
    verdict, as a suite's cascade needs) it also leaves its run at once, so the radius reported
    is an upper bound, not the smallest found. Success is misclassification (a target only
    steers the search, and the boundary linearised is label against target, as in AutoAttack).
    With the caller's ``targets`` success is reaching them, and the boundary linearised is the
    target's against the strongest other class at the current iterate.
    """

    iterative: ClassVar[bool] = True
    loss: ClassVar[str] = "margin"  # the label's logit against the target's, linearised
    minimum_norm: ClassVar[bool] = True
    steps: int = 100
    restarts: int = 1
    num_targets: int = 9
    alpha_max: float = 0.1  # largest weight of the step from the original input
    eta: float = 1.05  # overshoot past the linearised boundary
    beta: float = 0.9  # backward step towards the original after a success
    stop_within_eps: bool = False  # a point leaves its run once its adversarial is within eps
    # Escalation (0: off): after the ``steps`` runs, the ``escalation_probe`` unbroken points
    # closest to the boundary get runs of ``escalation_steps``; if that breaks at least
    # ``escalation_yield`` of them, every unbroken point gets them.
    escalation_steps: int = 0
    escalation_probe: int = 16
    escalation_yield: float = 0.25

    def __post_init__(self) -> None:
        require_counts(self, "steps", "restarts", "num_targets")
        if not 0.0 <= self.alpha_max <= 1.0:
            raise RobustkitError(f"alpha_max must lie in [0, 1], got {self.alpha_max:g}")
        if self.eta < 1.0:
            raise RobustkitError(f"eta must be >= 1 (overshoot), got {self.eta:g}")
        if not 0.0 < self.beta < 1.0:
            raise RobustkitError(f"beta must lie in (0, 1), got {self.beta:g}")
        if self.escalation_steps and (
            self.escalation_steps <= self.steps
            or self.escalation_probe < 1
            or not 0 < self.escalation_yield <= 1
        ):
            raise RobustkitError(
                "escalation_steps must exceed steps (or be 0 for no escalation), "
                "escalation_probe must be >= 1 and escalation_yield in (0, 1]"
            )

    def _rate(self, weight: Tensor) -> Tensor:
        """Per coordinate, how far it moves per unit of the norm budget along the minimal-norm
        projection direction, given |w| of the hyperplane: 1 (L-inf) or |w_i| (L2). A norm
        whose minimiser moves the coordinates in turn (L1) overrides ``_project`` instead."""
        raise NotImplementedError

    def _search(self, model: nn.Module, points: Points, eps: float) -> Kept:
        """Inputs already adversarial have radius 0; the others get the runs towards every
        target in turn, then (``escalation_steps``) the longer ones."""
        with torch.no_grad():
            logits = model(points.x0)
        broken = is_adversarial(logits, points.labels, points.targets)
        kept = Kept.unperturbed(points.x0, broken)
        if eps == 0:
            return kept
        goals = self._target_classes(logits, points.labels, points.targets)
        kept.extra["goal"] = goals[0].clone()  # per point, the goal of its smallest adversarial
        self._towards(model, points, kept, goals, eps=eps, steps=self.steps)
        if self.escalation_steps:
            self._escalate(model, points, kept, goals, eps)
        return kept

    def _towards(
        self,
        model: nn.Module,
        points: Points,
        kept: Kept,
        goals: list[Tensor],
        *,
        eps: float,
        steps: int,
        among: Tensor | None = None,
    ) -> None:
        """Runs of ``steps`` towards each goal in turn, with restarts, on the points (of
        ``among``) not yet within eps."""
        for goal in goals:
            aimed = dataclasses.replace(points, aim=goal)
            self._restarts(model, aimed, kept, eps=eps, among=among, steps=steps)

    def _escalate(
        self, model: nn.Module, points: Points, kept: Kept, goals: list[Tensor], eps: float
    ) -> None:
        """Longer runs where the short ones fell short: first on the unbroken points closest to
        the boundary (their smallest adversarial so far), towards the target that found it; if
        that breaks at least ``escalation_yield`` of them, on every unbroken point and target.
        FAB's first adversarial can lie far outside eps (a misleading gradient puts the
        linearised boundary far away), and each success steps back by only ``beta``, so a short
        run may end outside eps. Where the probe breaks only a stray point, the long runs would
        cost ten times the short ones for as little."""
        unbroken = ~kept.success
        count = min(self.escalation_probe, int(unbroken.sum()))
        if count == 0:
            return
        radius = -kept.objective  # a minimum-norm run's objective is minus the norm found
        closest = radius.masked_fill(~unbroken, torch.inf).topk(count, largest=False)
        probe = torch.zeros_like(unbroken)
        probe[closest.indices] = True
        steps = self.escalation_steps
        found_by = [kept.extra["goal"].clone()]
        self._towards(model, points, kept, found_by, eps=eps, steps=steps, among=probe)
        broken = int(kept.success[probe].sum())
        if broken >= self.escalation_yield * count:
            log.debug("FAB probe broke %d of %d: escalating every unbroken point", broken, count)
            self._towards(model, points, kept, goals, eps=eps, steps=steps, among=~kept.success)

    def _target_classes(
        self, logits: Tensor, labels: Tensor, targets: Tensor | None
    ) -> list[Tensor]:
        """The caller's targets, else the runner-up classes by clean logit, best first."""
        if targets is not None:
            return [targets]
        ranked = runner_up_classes(logits, labels, min(self.num_targets, logits.shape[1] - 1))
        return list(ranked.unbind(dim=1))

    def _single_run(
        self, model: nn.Module, points: Points, *, eps: float, restart: int, **settings: Any
    ) -> RunOutcome:
        """One FAB run of ``settings["steps"]`` towards the aim (from the input, a restart from
        a random point of the eps/2-sphere): per point its smallest adversarial, with minus its
        norm as objective (the input and -inf where none was found)."""
        x0, labels, goal, targets = points.x0, points.labels, points.aim, points.targets
        assert goal is not None  # FAB always aims at a class
        steps, random_start = settings["steps"], restart > 0
        low, high = BOUNDS
        best = torch.full((len(x0),), torch.inf, device=x0.device)
        best_x = x0.clone()
        x = x0.clone()
        if random_start:
            x = (x0 + 0.5 * eps * self.geometry.random_direction(x0)).clamp(low, high)
        active = torch.arange(len(x0), device=x0.device)  # the points still in the run
        for _ in range(steps):
            x0_a, labels_a, goal_a = x0[active], labels[active], goal[active]
            targets_a = None if targets is None else targets[active]
            x.requires_grad_(True)
            with torch.enable_grad():
                logits = model(x)
                rival = labels_a if targets_a is None else _strongest_other(logits.detach(), goal_a)
                rows = torch.arange(len(x), device=x.device)
                gap = logits[rows, goal_a] - logits[rows, rival]
                grad = torch.autograd.grad(gap.sum(), x)[0]
            x = x.detach()
            with torch.no_grad():
                x = self._biased_step(x, x0_a, gap.detach(), grad)
                adv = is_adversarial(model(x), labels_a, targets_a)
                norms = perturbation_norm(x - x0_a, self.norm)
                improved = adv & (norms < best[active])
                best[active[improved]] = norms[improved]
                best_x[active[improved]] = x[improved]
                x = torch.where(per_sample(adv, x), x0_a + self.beta * (x - x0_a), x)
                if self.stop_within_eps:
                    stay = best[active] > eps
                    active, x = active[stay], x[stay]
                    if active.numel() == 0:
                        break
        return RunOutcome(x_adv=best_x, success=best <= eps, objective=-best, extra={"goal": goal})

    def _biased_step(self, x: Tensor, x0: Tensor, gap: Tensor, grad: Tensor) -> Tensor:
        """Project the iterate and the original onto the linearised boundary gap(z) = 0 (within
        the box), overshoot by eta, and mix the two with a weight of at most alpha_max on the
        original's projection."""
        weight = grad.flatten(1)
        shift = (weight * (x - x0).flatten(1)).sum(dim=1)
        to_plane = self._project(x.flatten(1), weight, -gap).view_as(x)
        from_origin = self._project(x0.flatten(1), weight, shift - gap).view_as(x)
        near = perturbation_norm(to_plane, self.norm).clamp_min(1e-8)
        far = perturbation_norm(from_origin, self.norm).clamp_min(1e-8)
        alpha = per_sample((near / (near + far)).clamp(0.0, self.alpha_max), x)
        moved = (1 - alpha) * (x + self.eta * to_plane) + alpha * (x0 + self.eta * from_origin)
        low, high = BOUNDS
        return moved.clamp(low, high)

    def _project(self, points: Tensor, weight: Tensor, change: Tensor) -> Tensor:
        """Per row, the smallest displacement d (in this attack's norm) with weight . d = change
        and points + d inside the box; where the box makes that impossible, the box corner that
        gets closest.

        The minimiser moves each coordinate towards the side that helps, by rate_i x theta until
        it meets the box; the progress this buys is increasing and piecewise linear in theta, so
        theta is found by sorting the coordinates by where they saturate and searching the
        cumulative progress.
        """
        weight, change, magnitude, room = oriented_change(points, weight, change)
        rate = self._rate(magnitude)
        slope = magnitude * rate  # progress per unit theta while unsaturated
        moving = slope > 0
        saturation = torch.where(moving, room / torch.where(moving, rate, 1.0), 0.0)
        order = saturation.argsort(dim=1)
        kinks = saturation.gather(1, order)
        saturated = (magnitude * room).gather(1, order).cumsum(dim=1)
        slopes = slope.gather(1, order)
        unsaturated = slopes.sum(dim=1, keepdim=True) - slopes.cumsum(dim=1)
        reach = (saturated + kinks * unsaturated).cummax(dim=1).values
        segment = torch.searchsorted(reach, change[:, None].contiguous()).squeeze(1)
        feasible = segment < reach.shape[1]
        before = (segment - 1).clamp(0, reach.shape[1] - 1)[:, None]
        first = segment == 0
        done = torch.where(first, 0.0, saturated.gather(1, before).squeeze(1))
        open_slope = torch.where(first, slopes.sum(dim=1), unsaturated.gather(1, before).squeeze(1))
        theta = ((change - done) / open_slope.clamp_min(1e-30)).clamp_min(0.0)
        step = torch.minimum(theta[:, None] * rate, room)
        step = torch.where(feasible[:, None], step, room)
        return weight.sign() * step


def _strongest_other(logits: Tensor, cls: Tensor) -> Tensor:
    return logits.scatter(1, cls[:, None], float("-inf")).argmax(dim=1)


@register_attack("fab-t")
@dataclass(frozen=True, kw_only=True)
class FABTargetedLinf(_FABTargeted):
    """FAB-T under L-inf, AutoAttack's standard configuration: 9 target classes, 100 steps."""

    norm = "linf"

    def _rate(self, weight: Tensor) -> Tensor:
        return torch.ones_like(weight)


@register_attack("fab-t-l2")
@dataclass(frozen=True, kw_only=True)
class FABTargetedL2(_FABTargeted):
    """FAB-T under L2: the same search with Euclidean projections onto the boundary."""

    norm = "l2"

    def _rate(self, weight: Tensor) -> Tensor:
        return weight


def oriented_change(
    points: Tensor, weight: Tensor, change: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The hyperplane constraint ``weight . d = change`` per row, signed so that ``change`` is
    non-negative; with each coordinate's ``|w_i|`` and its room to the box in the direction that
    helps."""
    low, high = BOUNDS
    flip = torch.where(change < 0, -1.0, 1.0)
    weight = weight * flip[:, None]
    room = torch.where(weight > 0, high - points, points - low).clamp_min(0.0)
    return weight, change * flip, weight.abs(), room
