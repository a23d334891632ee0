"""The held-out images of a run: clean, one-step and PGD accuracy after every epoch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from robustkit.attacks import FGSM, PGDL2, GradientAttack
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel
from robustkit.training.config import TrainConfig
from robustkit.training.methods import pgd_attack

ACCURACY_KEYS = ("clean_accuracy", "fgsm_accuracy", "pgd_accuracy")
MONITOR_STEPS = 10


def monitor_attacks(norm: str, steps: int = MONITOR_STEPS) -> tuple[GradientAttack, GradientAttack]:
    """(one-step, PGD) attacks that measure held-out robustness during training."""
    one_step: GradientAttack = (
        FGSM() if norm == "linf" else PGDL2(steps=1, rel_stepsize=1.0, random_start=False)
    )
    return one_step, pgd_attack(norm, steps)


@dataclass(frozen=True)
class Holdout:
    """Images set aside from training, and the attacks measuring robustness on them."""

    x: Tensor
    y: Tensor
    eps: float
    seed: int
    attacks: tuple[GradientAttack, GradientAttack]

    def accuracy(self, model: RobustModel) -> dict[str, float]:
        """Clean, one-step and PGD accuracy, with a fixed seed and the global RNG untouched."""
        was_training = model.training
        model.eval()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            with torch.no_grad():
                clean = float((model(self.x).argmax(dim=1) == self.y).float().mean())
            accuracy = [clean]
            for attack in self.attacks:
                result = attack(model, self.x, self.y, eps=self.eps)
                accuracy.append(float((result.adv_pred == self.y).float().mean()))
        model.train(was_training)
        return dict(zip(ACCURACY_KEYS, accuracy, strict=True))


def split_holdout(
    x: Tensor, y: Tensor, config: TrainConfig, device: torch.device
) -> tuple[Holdout, Tensor, Tensor]:
    """(the held-out images on ``device``, training images, training labels), a seeded split."""
    if config.holdout >= len(x):
        raise RobustkitError(
            f"--holdout {config.holdout} leaves no training images out of {len(x)}: "
            "lower it or use more --num-samples"
        )
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.seed))
    hold, keep = order[: config.holdout], order[config.holdout :]
    holdout = Holdout(
        x[hold].to(device),
        y[hold].to(device),
        config.eps,
        config.seed,
        monitor_attacks(config.norm),
    )
    return holdout, x[keep], y[keep]
