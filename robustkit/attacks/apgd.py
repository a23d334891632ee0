"""Auto-PGD (Croce & Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks"): PGD with momentum whose step size needs no tuning.

APGD starts with a step of 2 x eps and halves it, per sample, at fixed checkpoints of the budget
whenever the loss has stopped rising; a halved run goes back to its best point. Untargeted with
the CE loss (``apgd-ce``) or the scale-invariant DLR loss (``apgd-dlr``), and targeted with the
targeted DLR loss towards each of the top classes in turn (``apgd-t``, the AutoAttack variant).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from robustkit.attacks.base import Attack, attack_objective, require_counts, runner_up_classes
from robustkit.attacks.registry import register_attack
from robustkit.attacks.runs import Kept, Points, RunOutcome, per_sample, select_rows
from robustkit.errors import RobustkitError
from robustkit.models.passes import pass_logits
from robustkit.models.wrapper import BOUNDS

MOMENTUM = 0.75  # weight of the new projected step against the last one (the paper's alpha)
INITIAL_STEP = 2.0  # the first step size, relative to eps
# Checkpoints in hundredths of the budget: p_1 = 0.22, then gaps shrinking by 0.03 down to 0.06.
_FIRST_CHECKPOINT, _GAP_SHRINK, _MIN_GAP = 22, 3, 6


def checkpoints(steps: int) -> list[int]:
    """The iterations w_j = ceil(p_j x steps) after which APGD reconsiders its step size.

    p_0 = 0, p_1 = 0.22 and p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06): the checks come
    closer as the run goes on. Computed in exact hundredths (0.41 x 100 is not 41 in floats);
    checkpoints that coincide at a small budget are merged, and none falls on the last step.
    """
    marks = [0]
    previous, current = 0, _FIRST_CHECKPOINT
    while current < 100:
        mark = -(-current * steps // 100)  # ceil, in integers
        if marks[-1] < mark < steps:
            marks.append(mark)
        previous, current = current, current + max(current - previous - _GAP_SHRINK, _MIN_GAP)
    return marks


@dataclass(frozen=True)
class StepSizeSchedule:
    """APGD's per-sample step size and the loss record that decides when to halve it.

    At each checkpoint w_j a point's step is halved when fewer than ``rho`` of the steps since
    w_{j-1} raised its loss (the iterates oscillate), or when neither its step size nor its best
    loss changed since w_{j-1} (the run is stuck). A halved point restarts from its best point.
    """

    step_size: Tensor
    best_loss: Tensor
    last_loss: Tensor  # the loss of the current iterate, to count the steps that raised it
    increases: Tensor  # steps since the last checkpoint that raised the loss
    best_at_checkpoint: Tensor
    halved_at_checkpoint: Tensor
    rho: float
    marks: tuple[int, ...]

    @classmethod
    def start(cls, step_size: float, loss: Tensor, steps: int, rho: float) -> StepSizeSchedule:
        """The schedule of a run of ``steps`` steps whose start points have ``loss``."""
        return cls(
            step_size=torch.full_like(loss, step_size),
            best_loss=loss.clone(),
            last_loss=loss.clone(),
            increases=torch.zeros_like(loss, dtype=torch.long),
            best_at_checkpoint=loss.clone(),
            halved_at_checkpoint=torch.zeros_like(loss, dtype=torch.bool),
            rho=rho,
            marks=tuple(checkpoints(steps)),
        )

    def observe(self, iteration: int, loss: Tensor) -> tuple[StepSizeSchedule, Tensor, Tensor]:
        """Take the loss after step ``iteration``; return the new schedule and, per sample,
        whether this is its best point so far and whether to go back to the best point (its
        step size was halved here)."""
        improved = loss > self.best_loss
        best_loss = torch.where(improved, loss, self.best_loss)
        increases = self.increases + (loss > self.last_loss).long()
        if iteration not in self.marks:
            halve = torch.zeros_like(improved)
            return (
                dataclasses.replace(self, best_loss=best_loss, last_loss=loss, increases=increases),
                improved,
                halve,
            )
        at = self.marks.index(iteration)
        window = self.marks[at] - self.marks[at - 1]
        oscillating = increases < self.rho * window
        stuck = ~self.halved_at_checkpoint & (best_loss <= self.best_at_checkpoint)
        halve = oscillating | stuck
        schedule = dataclasses.replace(
            self,
            step_size=torch.where(halve, self.step_size / 2, self.step_size),
            best_loss=best_loss,
            # a restarted point continues from its best point: count rises from there
            last_loss=torch.where(halve, best_loss, loss),
            increases=torch.zeros_like(increases),
            best_at_checkpoint=best_loss,
            halved_at_checkpoint=halve,
        )
        return schedule, improved, halve


IterateT = TypeVar("IterateT", bound="Iterate")


@dataclass(frozen=True, kw_only=True)
class Iterate:
    """The points still in an APGD run (``index``: their position in it; ``points``: what they
    are, with the class the loss pulls towards as ``aim``), their iterate and its gradient, and
    their best point so far with its gradient."""

    index: Tensor
    points: Points
    x: Tensor
    grad: Tensor
    best_x: Tensor
    best_grad: Tensor

    @classmethod
    def start(
        cls: type[IterateT], points: Points, x: Tensor, grad: Tensor, **state: Any
    ) -> IterateT:
        """Every point at ``x``, so far its best point, with the gradient there; ``state`` sets
        a subclass's own fields."""
        index = torch.arange(len(x), device=x.device)
        return cls(index=index, points=points, x=x, grad=grad, best_x=x, best_grad=grad, **state)


@dataclass(frozen=True, kw_only=True)
class _Batch(Iterate):
    """APGD's run: with the last iterate (momentum), each point's first success and the iterate
    that fooled the most judging passes."""

    x_prev: Tensor
    found: Tensor  # already succeeded (without early stop: keeps its first success)
    best_share: Tensor  # the highest share of judging passes an iterate fooled so far
    share_x: Tensor  # that iterate


Evaluation = tuple[Tensor, Tensor, Tensor | None]  # per sample: loss, share fooled, gradient


@dataclass(frozen=True, kw_only=True)
class AutoPGD(Attack):
    """APGD's algorithm, shared by every loss and norm (the geometry is in small overrides).

    ``steps`` iterations (100 as in the paper and AutoAttack), ``restarts`` random restarts on the
    points still unbroken, ``rho`` the share of loss-raising steps below which the step size is
    halved. Per sample it keeps the first success (early stop: a broken point leaves the batch)
    or else the highest-loss point.
    """

    iterative: ClassVar[bool] = True
    loss: ClassVar[str] = "ce"
    randomized_ok: ClassVar[bool] = True
    steps: int = 100
    restarts: int = 1
    rho: float = 0.75
    early_stop: bool = True
    eot_samples: int = 1
    eval_passes: int = 1

    def __post_init__(self) -> None:
        require_counts(self, "steps", "restarts", "eot_samples", "eval_passes")
        if not 0 < self.rho <= 1:
            raise RobustkitError(f"rho is a share of steps: use 0 < rho <= 1, got {self.rho:g}")

    def _check_classes(self, classes: int, targeted: bool) -> None:
        """DLR needs the 3rd (targeted: 4th) largest logit: refuse smaller models up front."""
        if self.loss != "dlr":
            return
        needed = 4 if targeted else 3
        if classes < needed:
            raise RobustkitError(
                f"{self.name} needs at least {needed} classes (its DLR loss divides by the spread "
                f"of the top {needed} logits), the model has {classes}: use apgd-ce"
                + (" with targets=" if targeted else "")
            )

    def _aims(
        self, clean: Tensor, labels: Tensor, targets: Tensor | None
    ) -> Iterator[Tensor | None]:
        """The classes each run's loss pulls towards: the caller's targets, or none."""
        self._check_classes(clean.shape[1], targets is not None)
        yield targets

    def _start(
        self, model: nn.Module, points: Points, eps: float
    ) -> tuple[Kept, list[Tensor | None]]:
        """Points the clean passes already fool all count as broken; the aims come from the
        clean logits averaged over those passes."""
        with torch.no_grad():
            passes = pass_logits(model, points.x0, self.eval_passes)
        broken = self._fooled(passes, points.labels, points.targets).all(dim=0)
        aims = list(self._aims(passes.mean(dim=0), points.labels, points.targets))
        return Kept.start(points.x0, broken), aims

    def _judging_passes(self) -> int:
        return self.eval_passes

    @staticmethod
    def _fooled(logits: Tensor, labels: Tensor, goal: Tensor | None) -> Tensor:
        """Per pass and sample of (passes, N, classes) logits: whether the attack succeeds."""
        pred = logits.argmax(dim=2)
        return pred == goal if goal is not None else pred != labels

    def _evaluate(
        self, model: nn.Module, x: Tensor, points: Points, *, need_grad: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Per sample: the loss (towards ``points.aim``) averaged over the EOT passes, the share
        of the judging passes that ``x`` fools, and the averaged loss's gradient if asked."""
        labels, aim, goal = points.labels, points.aim, points.targets
        samples, judges = self.eot_samples, self.eval_passes
        x = x.detach().requires_grad_(need_grad)
        with torch.set_grad_enabled(need_grad):
            logits = pass_logits(model, x, samples)
            per_pass = attack_objective(
                logits.flatten(0, 1),
                labels.repeat(samples),
                None if aim is None else aim.repeat(samples),
                self.loss,
            )
            loss = per_pass.view(samples, len(x)).mean(dim=0)
        grad = torch.autograd.grad(loss.sum(), x)[0] if need_grad else None
        judging = logits.detach()[:judges]
        if judges > samples:  # top up with forward-only passes
            with torch.no_grad():
                extra = pass_logits(model, x.detach(), judges - samples)
            judging = torch.cat([judging, extra])
        share = self._fooled(judging, labels, goal).float().mean(dim=0)
        return loss.detach(), share, grad

    def _single_run(
        self, model: nn.Module, points: Points, *, eps: float, restart: int, **settings: Any
    ) -> RunOutcome:
        """One run from a random start; finished points are written out and leave the batch."""
        out = RunOutcome.blank(points.x0)
        batch, schedule, seen = self._begin(model, points, eps)
        for step in range(self.steps + 1):
            if step > 0:
                seen = self._evaluate(model, batch.x, batch.points, need_grad=step < self.steps)
            batch, schedule = self._take(batch, schedule, step, seen, out)
            if batch.index.numel() == 0 or step == self.steps:
                break
            with torch.no_grad():
                batch = self._step(batch, schedule.step_size, eps, plain=step == 0)
        return self._unbroken(batch, schedule, out)

    def _begin(
        self, model: nn.Module, points: Points, eps: float
    ) -> tuple[_Batch, StepSizeSchedule, Evaluation]:
        """The run's random start, evaluated, and the step-size schedule from there."""
        x0 = points.x0
        x = self.geometry.random_start(x0, eps).clamp(*BOUNDS)
        seen = self._evaluate(model, x, points, need_grad=True)
        loss, _, grad = seen
        assert grad is not None  # asked for
        n = len(x0)
        batch = _Batch.start(
            points,
            x,
            grad,
            x_prev=x,
            found=torch.zeros(n, dtype=torch.bool, device=x0.device),
            best_share=torch.zeros(n, device=x0.device),
            share_x=x,
        )
        return batch, StepSizeSchedule.start(INITIAL_STEP * eps, loss, self.steps, self.rho), seen

    def _take(
        self,
        batch: _Batch,
        schedule: StepSizeSchedule,
        step: int,
        seen: Evaluation,
        out: RunOutcome,
    ) -> tuple[_Batch, StepSizeSchedule]:
        """Fold in the evaluation of the iterate after ``step`` steps: write out each point's
        first success, update the schedule and best points, and (early stop) drop the points
        broken here."""
        loss, share, grad = seen
        broken = share >= 1  # fools every judging pass
        batch = self._keep_most_fooling(batch, share)
        new = broken & ~batch.found
        if bool(new.any()):
            out.record(batch.index[new], batch.x[new], True, loss[new])
            batch = dataclasses.replace(batch, found=batch.found | new)
        if step > 0:
            schedule, improved, restart = schedule.observe(step, loss)
            # after the last step there is no gradient, and no further step to take
            batch = self._keep_best(batch, batch.grad if grad is None else grad, improved, restart)
        if self.early_stop and bool(broken.any()):
            keep = ~broken
            batch, schedule = select_rows(batch, keep), select_rows(schedule, keep)
        return batch, schedule

    @staticmethod
    def _unbroken(batch: _Batch, schedule: StepSizeSchedule, out: RunOutcome) -> RunOutcome:
        """The run's outcome, with the points never broken at the iterate fooling the most
        passes, else the highest-loss one."""
        share = out.success.float()
        if batch.index.numel():
            rest = ~batch.found
            fooling = per_sample(batch.best_share > 0, batch.x)
            x_rest = torch.where(fooling, batch.share_x, batch.best_x)[rest]
            out.record(batch.index[rest], x_rest, False, schedule.best_loss[rest])
            share[batch.index[rest]] = batch.best_share[rest]
        out.share = share
        return out

    @staticmethod
    def _keep_most_fooling(batch: _Batch, share: Tensor) -> _Batch:
        """Record the iterates that fool a larger share of the judging passes than any before."""
        more = share > batch.best_share
        if not bool(more.any()):
            return batch
        return dataclasses.replace(
            batch,
            best_share=torch.where(more, share, batch.best_share),
            share_x=torch.where(per_sample(more, batch.x), batch.x, batch.share_x),
        )

    @staticmethod
    def _keep_best(batch: _Batch, grad: Tensor, improved: Tensor, restart: Tensor) -> _Batch:
        """Record new best points; send the points whose step was halved back to theirs."""
        mask = per_sample(improved, batch.x)
        best_x = torch.where(mask, batch.x, batch.best_x)
        best_grad = torch.where(mask, grad, batch.best_grad)
        back = per_sample(restart, batch.x)
        x = torch.where(back, best_x, batch.x)
        return dataclasses.replace(
            batch,
            x=x,
            # a restart has no momentum to carry: the next step adds none
            x_prev=torch.where(back, best_x, batch.x_prev),
            grad=torch.where(back, best_grad, grad),
            best_x=best_x,
            best_grad=best_grad,
        )

    def _step(self, batch: _Batch, step_size: Tensor, eps: float, *, plain: bool) -> _Batch:
        """z = P(x + eta d), then x' = P(x + alpha (z - x) + (1 - alpha) (x - x_prev))."""
        low, high = BOUNDS
        x, x0 = batch.x, batch.points.x0
        eta = per_sample(step_size, x)
        geometry = self.geometry
        z = geometry.project(x + eta * geometry.direction(batch.grad), x0, eps).clamp(low, high)
        if plain:
            return dataclasses.replace(batch, x=z, x_prev=x)
        moved = x + MOMENTUM * (z - x) + (1 - MOMENTUM) * (x - batch.x_prev)
        return dataclasses.replace(
            batch, x=geometry.project(moved, x0, eps).clamp(low, high), x_prev=x
        )


@register_attack("apgd-ce")
@dataclass(frozen=True, kw_only=True)
class APGDCE(AutoPGD):
    """APGD on the cross-entropy loss under an L-inf budget (AutoAttack's first attack)."""

    norm = "linf"


@register_attack("apgd-ce-l2")
@dataclass(frozen=True, kw_only=True)
class APGDCEL2(AutoPGD):
    """APGD on the cross-entropy loss under an L2 budget."""

    norm = "l2"


@register_attack("apgd-dlr")
@dataclass(frozen=True, kw_only=True)
class APGDDLR(AutoPGD):
    """APGD on the DLR loss under an L-inf budget: invariant to the scale of the logits, so a
    model that saturates its softmax (a flat CE gradient) cannot hide behind it."""

    norm = "linf"
    loss = "dlr"


@register_attack("apgd-dlr-l2")
@dataclass(frozen=True, kw_only=True)
class APGDDLRL2(AutoPGD):
    """APGD on the DLR loss under an L2 budget."""

    norm = "l2"
    loss = "dlr"


@dataclass(frozen=True, kw_only=True)
class AutoPGDTargeted(AutoPGD):
    """APGD-T: one run of the targeted DLR loss towards each of the ``num_targets`` classes with
    the highest clean logits after the label, each on the points the earlier ones left unbroken.

    Any misclassification counts as success: the targets only vary the directions searched (a
    targeted loss often finds a way out where the untargeted one stalls). With ``targets=``, one
    targeted run whose success is reaching the target.
    """

    loss = "dlr"
    num_targets: int = 9  # all the other classes of a 10-class model, as in AutoAttack

    def __post_init__(self) -> None:
        super().__post_init__()
        require_counts(self, "num_targets")

    def _aims(
        self, clean: Tensor, labels: Tensor, targets: Tensor | None
    ) -> Iterator[Tensor | None]:
        """The caller's targets, else the top classes by clean logit, excluding the label."""
        self._check_classes(clean.shape[1], targeted=True)
        if targets is not None:
            yield targets
            return
        ranked = runner_up_classes(clean, labels, min(self.num_targets, clean.shape[1] - 1))
        yield from ranked.unbind(dim=1)


@register_attack("apgd-t")
@dataclass(frozen=True, kw_only=True)
class APGDT(AutoPGDTargeted):
    """APGD-T under an L-inf budget (AutoAttack's third attack)."""

    norm = "linf"


@register_attack("apgd-t-l2")
@dataclass(frozen=True, kw_only=True)
class APGDTL2(AutoPGDTargeted):
    """APGD-T under an L2 budget."""

    norm = "l2"
