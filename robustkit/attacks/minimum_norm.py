"""Bookkeeping shared by the minimum-norm attacks (FAB, FMN): per point the smallest adversarial
found so far, improved by runs on the points not yet within eps, and the result they return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustkit.attacks.base import AttackResult, is_adversarial
from robustkit.attacks.geometry import per_sample

Run = Callable[[Tensor, int], tuple[Tensor, Tensor]]  # (rows, restart) -> (found, their norms)


@dataclass
class SmallestFound:
    """Per point, the smallest adversarial found (``best_x``) and its norm (``radius``, inf
    while none)."""

    best_x: Tensor
    radius: Tensor
    eps: float

    @classmethod
    def start(cls, inputs: Tensor, eps: float) -> SmallestFound:
        radius = torch.full((len(inputs),), torch.inf, device=inputs.device)
        return cls(best_x=inputs.clone(), radius=radius, eps=eps)

    def shrink(self, restarts: int, run: Run, among: Tensor | None = None) -> None:
        """Up to ``restarts`` runs, each on the points (of the mask ``among``, if given) whose
        radius still exceeds eps; a run's adversarial replaces the best one where its norm is
        smaller."""
        for restart in range(restarts):
            open_ = self.radius > self.eps
            todo = (open_ if among is None else open_ & among).nonzero().squeeze(1)
            if todo.numel() == 0:
                return
            found, norms = run(todo, restart)
            better = norms < self.radius[todo]
            self.radius[todo[better]] = norms[better]
            self.best_x[todo[better]] = found[better]

    def result(
        self, model: nn.Module, inputs: Tensor, labels: Tensor, targets: Tensor | None
    ) -> AttackResult:
        """The smallest adversarial where it lies within eps, else the input; what is returned is
        scored, so success, adv_pred and radius all describe x_adv."""
        within = self.radius <= self.eps
        x_adv = torch.where(per_sample(within, inputs), self.best_x, inputs)
        with torch.no_grad():
            logits = model(x_adv)
        success = is_adversarial(logits, labels, targets) & within
        radius = torch.where(success, self.radius, torch.inf)
        return AttackResult(
            x_adv=x_adv, success=success, adv_pred=logits.argmax(dim=1), radius=radius
        )
