"""Outcome: per sample of a batch, whether it is broken yet, by what and how far from the input."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from robustkit.attacks.base import perturbation_norm

UNBROKEN = ""


@dataclass
class Outcome:
    """The state of one batch under one or more attacks at one budget.

    ``broken_by[i]`` names the attack that broke sample i first (``""`` while it holds);
    ``perturbation`` is the size of that adversarial's perturbation in the attack's norm (NaN while
    unbroken); ``radius`` is filled by minimum-norm attacks (inf where none was found).
    ``queries`` counts the model queries of a query-based attack: those its breaker spent up to
    the first success, or, while the sample holds, those the last attack spent on it (NaN: no
    query-based attack has run on it).

    A randomized model's outcome also holds, per sample, the adversarial kept (``x_adv``, the
    input while none) and ``correct``: of the fresh passes that scored it, how many classify it
    correctly. A new adversarial replaces the kept one when fewer of its passes are correct, and
    a sample is broken only when none is.
    """

    broken: Tensor
    adv_pred: Tensor
    perturbation: Tensor
    broken_by: list[str]
    queries: Tensor
    radius: Tensor | None = None
    x_adv: Tensor | None = None
    correct: Tensor | None = None

    @classmethod
    def unattacked(
        cls, clean_pred: Tensor, *, x: Tensor | None = None, correct: Tensor | None = None
    ) -> Outcome:
        """No attack yet: every prediction is the clean one (randomized: the input ``x``, with
        ``correct`` of its scoring passes right)."""
        n = len(clean_pred)
        return cls(
            broken=torch.zeros(n, dtype=torch.bool, device=clean_pred.device),
            adv_pred=clean_pred.clone(),
            perturbation=torch.full((n,), float("nan"), device=clean_pred.device),
            broken_by=[UNBROKEN] * n,
            queries=torch.full((n,), float("nan"), device=clean_pred.device),
            x_adv=None if x is None else x.clone(),
            correct=None if correct is None else correct.clone(),
        )

    def copy(self) -> Outcome:
        return Outcome(
            broken=self.broken.clone(),
            adv_pred=self.adv_pred.clone(),
            perturbation=self.perturbation.clone(),
            broken_by=list(self.broken_by),
            queries=self.queries.clone(),
            radius=None if self.radius is None else self.radius.clone(),
            x_adv=None if self.x_adv is None else self.x_adv.clone(),
            correct=None if self.correct is None else self.correct.clone(),
        )

    def record(
        self,
        indices: Tensor,
        success: Tensor,
        adv_pred: Tensor,
        delta: Tensor,
        *,
        attack: str,
        norm: str,
        correct: Tensor | None = None,
        x_adv: Tensor | None = None,
        queries: Tensor | None = None,
    ) -> Tensor:
        """Mark ``indices[success]`` broken by ``attack`` (samples already broken keep their
        first breaker); returns the batch indices newly broken. Randomized: take the
        adversarials ``x_adv`` with fewer ``correct`` passes than those kept. ``queries``, per
        point, what the attack spent on it (kept for the points it broke or left unbroken)."""
        if queries is not None:
            holding = ~self.broken[indices]
            self.queries[indices[holding]] = queries[holding].to(self.queries)
        if self.correct is not None and correct is not None:
            keep = correct < self.correct[indices]
        else:
            keep = success & ~self.broken[indices]
        fresh = indices[keep]
        self.broken[fresh] = success[keep]
        self.adv_pred[fresh] = adv_pred[keep]
        self.perturbation[fresh] = perturbation_norm(delta[keep], norm).to(self.perturbation)
        if self.correct is not None and self.x_adv is not None and correct is not None:
            self.correct[fresh] = correct[keep]
            if x_adv is not None:
                self.x_adv[fresh] = x_adv[keep]
        for i in fresh.tolist():
            self.broken_by[i] = attack
        return fresh

    def absorb(self, other: Outcome, *, within: float | None = None) -> None:
        """Take over the samples ``other`` broke and this outcome had not (with ``within``, only
        those whose perturbation is no larger: they are adversarial at that budget too)."""
        if self.correct is not None and other.correct is not None:
            fresh = other.correct < self.correct
        else:
            fresh = other.broken & ~self.broken
        if within is not None:
            fresh &= other.perturbation <= within
        if not bool(fresh.any()):
            return
        self.broken[fresh] = other.broken[fresh]
        self.adv_pred[fresh] = other.adv_pred[fresh]
        self.perturbation[fresh] = other.perturbation[fresh]
        self.queries[fresh] = other.queries[fresh]
        if self.correct is not None and other.correct is not None:
            self.correct[fresh] = other.correct[fresh]
            if self.x_adv is not None and other.x_adv is not None:
                self.x_adv[fresh] = other.x_adv[fresh]
        for i in fresh.nonzero().squeeze(1).tolist():
            self.broken_by[i] = other.broken_by[i]
