"""The catastrophic-overfitting guard (Wong et al., 2020): FGSM accuracy up, PGD accuracy gone."""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class OverfittingGuard:
    """Detects catastrophic overfitting from a sequence of held-out (FGSM, PGD) accuracies.

    Collapse: PGD accuracy below ``(1 - drop)`` x its best while FGSM accuracy is at least what
    it was at that best (the model learnt to mask the one-step attack, not to resist PGD). A best
    below ``min_best`` is noise around zero (e.g. during an eps ramp), not robustness to lose.
    """

    drop: float = 0.5
    min_best: float = 0.1
    best_pgd: float = -1.0
    best_fgsm: float = -1.0
    best_at: int = -1
    collapsed_at: int = -1  # the first collapse

    def update(self, at: int, fgsm: float, pgd: float) -> bool:
        """Record the accuracies measured at step or epoch ``at``; True when they collapsed."""
        if pgd > self.best_pgd:
            self.best_pgd, self.best_fgsm, self.best_at = pgd, fgsm, at
            return False
        collapsed = pgd < (1.0 - self.drop) * self.best_pgd and fgsm >= self.best_fgsm
        if collapsed and self.best_pgd >= self.min_best:
            if self.collapsed_at < 0:
                self.collapsed_at = at
            log.warning(
                "catastrophic overfitting at %d: PGD accuracy %.1f%% (best %.1f%% at %d) while "
                "FGSM accuracy rose to %.1f%%",
                at,
                100 * pgd,
                100 * self.best_pgd,
                self.best_at,
                100 * fgsm,
            )
            return True
        return False

    def is_best(self, at: int) -> bool:
        """Whether the last update at ``at`` set a new best PGD accuracy."""
        return self.best_at == at
