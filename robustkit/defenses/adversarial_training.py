"""Adversarial-training methods and the catastrophic-overfitting guard.

Every method crafts its adversarials with the attacks of ``robustkit.attacks`` (no second PGD):

* ``pgd``: Madry et al. (2018), each minibatch replaced by PGD-k adversarials from a random
  start, step 2.5 x eps / k, L-inf or L2;
* ``fgsm-rs``: Wong et al. (2020), one signed step of 1.25 x eps from a uniform random start
  (``PGDLinf(steps=1, rel_stepsize=1.25)``, the same as ``abs_stepsize=1.25 * eps``);
* ``trades``: Zhang et al. (2019)'s loss, CE(clean) + beta x KL(clean || adversarial). The
  adversarials come from PGD on the cross-entropy (the registered attack) rather than from
  maximising the KL term, so this is a TRADES-style loss, not the paper's exact inner problem;
* ``manifold``: Jalal et al. (2019)'s robust-manifold training. Each minibatch is projected onto
  a generator's range and attacked in latent space (the ``latent-overpowered`` attack); the loss
  is the mean of the cross-entropy on the clean images and on the attacked range points (the
  projection plus the latent move, clipped to the eps-ball: the on-range ``G(z)`` whenever the
  move fits), the kind of points a manifold-projection defense hands its classifier. L-inf only;
* ``natural``: plain cross-entropy on clean images.

Adversarials are crafted with the model in eval mode, then the update runs in train mode. Madry
and Wong craft in train mode; the two only differ for nets with batch norm or dropout (crafting in
eval mode keeps attack forwards out of the running statistics). The bundled MNIST nets have
neither. Early stop is off: the model trains on full-strength adversarials, not on the first
iterate that happens to fool it.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass

from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.attacks import FGSM, PGDL2, Attack, GradientAttack, LatentOverpowered, PGDLinf
from robustkit.errors import RobustkitError

log = logging.getLogger(__name__)

METHODS = ("pgd", "fgsm-rs", "trades", "manifold", "natural")
NORMS = ("linf", "l2")
FGSM_RS_STEP = 1.25
PGD_STEP_BUDGET = 2.5  # total path length of PGD-k in units of eps: step = 2.5 * eps / k
MANIFOLD_PROJECTION_STEPS = 30  # a rough start point on the range is enough to train on


def check_method(method: str, norm: str) -> None:
    """Reject an unknown method or norm, or FGSM-RS under L2, with a line naming the fix."""
    if method not in METHODS:
        close = difflib.get_close_matches(method, METHODS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise RobustkitError(f"unknown training method {method!r}: {hint}use {', '.join(METHODS)}")
    if norm not in NORMS:
        raise RobustkitError(f"unknown norm {norm!r}: use linf or l2")
    if method in ("fgsm-rs", "manifold") and norm != "linf":
        raise RobustkitError(f"{method} trains under L-inf only: use --norm linf or --method pgd")


def training_attack(
    method: str, norm: str, steps: int, generator: nn.Module | None = None
) -> Attack | None:
    """The attack that crafts the training adversarials (None for natural training);
    ``manifold`` searches the latent space of ``generator``."""
    check_method(method, norm)
    if method == "natural":
        return None
    if method == "fgsm-rs":
        return PGDLinf(steps=1, rel_stepsize=FGSM_RS_STEP, random_start=True, early_stop=False)
    if steps < 1:
        raise RobustkitError(f"--steps must be >= 1 for {method}, got {steps}")
    if method == "manifold":
        if generator is None:
            raise RobustkitError(
                "--method manifold trains on a generator's range: give --generator "
                "zoo:mnist-dcgan (or a generator file from robustkit train-gan)"
            )
        return LatentOverpowered(
            generator=generator,
            steps=steps,
            projection_steps=MANIFOLD_PROJECTION_STEPS,
            early_stop=False,
        )
    cls = PGDLinf if norm == "linf" else PGDL2
    return cls(steps=steps, rel_stepsize=PGD_STEP_BUDGET / steps, early_stop=False)


@dataclass(frozen=True)
class AdversarialLoss:
    """The training loss of one method on one minibatch of [0, 1] pixels."""

    method: str
    attack: Attack | None
    beta: float = 6.0

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        """Return (loss, logits on the images trained on); leaves ``model`` in train mode."""
        if self.attack is None:
            model.train()
            logits = model(x)
            return F.cross_entropy(logits, y), logits
        model.eval()
        if isinstance(self.attack, LatentOverpowered):
            range_adv = self.attack.search(model, x, y, eps=eps).range_adv
            model.train()
            logits = model(range_adv)
            loss = (F.cross_entropy(model(x), y) + F.cross_entropy(logits, y)) / 2
            return loss, logits
        x_adv = self.attack(model, x, y, eps=eps).x_adv
        model.train()
        logits = model(x_adv)
        if self.method != "trades":
            return F.cross_entropy(logits, y), logits
        clean = model(x)
        robust = F.kl_div(
            F.log_softmax(logits, dim=1), F.softmax(clean, dim=1), reduction="batchmean"
        )
        return F.cross_entropy(clean, y) + self.beta * robust, logits


def monitor_attacks(norm: str, steps: int = 10) -> tuple[GradientAttack, GradientAttack]:
    """(one-step, PGD) attacks that measure held-out robustness during training."""
    one_step: GradientAttack = (
        FGSM() if norm == "linf" else PGDL2(steps=1, rel_stepsize=1.0, random_start=False)
    )
    cls = PGDLinf if norm == "linf" else PGDL2
    return one_step, cls(steps=steps, rel_stepsize=PGD_STEP_BUDGET / steps, early_stop=False)


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
