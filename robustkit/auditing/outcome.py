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
    """

    broken: Tensor
    adv_pred: Tensor
    perturbation: Tensor
    broken_by: list[str]
    radius: Tensor | None = None

    @classmethod
    def unattacked(cls, clean_pred: Tensor) -> Outcome:
        """No attack yet: every prediction is the clean one."""
        n = len(clean_pred)
        return cls(
            broken=torch.zeros(n, dtype=torch.bool, device=clean_pred.device),
            adv_pred=clean_pred.clone(),
            perturbation=torch.full((n,), float("nan"), device=clean_pred.device),
            broken_by=[UNBROKEN] * n,
        )

    def copy(self) -> Outcome:
        return Outcome(
            broken=self.broken.clone(),
            adv_pred=self.adv_pred.clone(),
            perturbation=self.perturbation.clone(),
            broken_by=list(self.broken_by),
            radius=None if self.radius is None else self.radius.clone(),
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
    ) -> Tensor:
        """Mark ``indices[success]`` broken by ``attack`` (samples already broken keep their
        first breaker); returns the batch indices newly broken."""
        fresh = indices[success & ~self.broken[indices]]
        keep = success & ~self.broken[indices]
        self.broken[fresh] = True
        self.adv_pred[fresh] = adv_pred[keep]
        self.perturbation[fresh] = perturbation_norm(delta[keep], norm).to(self.perturbation)
        for i in fresh.tolist():
            self.broken_by[i] = attack
        return fresh

    def absorb(self, other: Outcome, *, within: float | None = None) -> None:
        """Take over the samples ``other`` broke and this outcome had not (with ``within``, only
        those whose perturbation is no larger: they are adversarial at that budget too)."""
        fresh = other.broken & ~self.broken
        if within is not None:
            fresh &= other.perturbation <= within
        if not bool(fresh.any()):
            return
        self.broken |= fresh
        self.adv_pred[fresh] = other.adv_pred[fresh]
        self.perturbation[fresh] = other.perturbation[fresh]
        for i in fresh.nonzero().squeeze(1).tolist():
            self.broken_by[i] = other.broken_by[i]
