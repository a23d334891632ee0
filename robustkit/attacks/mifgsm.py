"""Momentum iterative FGSM (Dong et al. 2018), the standard attack for transferability."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from robustkit.attacks.pgd import GradientAttack
from robustkit.attacks.registry import register_attack
from robustkit.attacks.runs import per_sample


@register_attack("mi-fgsm")
@dataclass(frozen=True, kw_only=True)
class MIFGSM(GradientAttack):
    """Signed steps along a running sum of L1-normalised gradients (decay ``decay``).

    Defaults follow the paper: 10 steps of eps / steps from the clean input, all steps run
    (stopping at the first success leaves barely-adversarial points, which transfer poorly).
    """

    norm = "linf"
    steps: int = 10
    random_start: bool = False
    early_stop: bool = False
    decay: float = 1.0

    def stepsize(self, eps: float) -> float:
        """eps / steps unless given (the paper's rule: the steps add up to exactly eps)."""
        if self.abs_stepsize is None and self.rel_stepsize is None:
            return eps / self.steps
        return super().stepsize(eps)

    def _direction(self, grad: Tensor, previous: Tensor | None) -> Tensor:
        l1 = grad.abs().flatten(1).sum(dim=1).clamp_min(1e-12)
        normalised = grad / per_sample(l1, grad)
        return normalised if previous is None else self.decay * previous + normalised
