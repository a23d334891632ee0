"""Gaussian noise: an additive-noise attack (sigma is the budget), a pure-noise probe over a
mean x sigma grid, and PGD started from pure noise towards a target class."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import torch
from torch import Tensor, nn

from robustkit.attacks.base import Attack, is_adversarial
from robustkit.attacks.pgd import PGDLinf
from robustkit.attacks.registry import register_attack
from robustkit.attacks.runs import Points, RunOutcome
from robustkit.errors import RobustkitError
from robustkit.models.wrapper import BOUNDS, device_of

MAX_NOISE_TARGETS = 10  # PGD-from-noise targets: every class of a 10-class model, 10 of ImageNet's
GRID_SIDE = 10  # means and sigmas of the pure-noise grid
BATCH_ELEMENTS = 2**17  # pixels per probe batch: 2 cells of MNIST noise (larger ones thrash caches)
T = TypeVar("T")
Advance = Callable[[float], None]  # told each finished group's share of a probe


@register_attack("gaussian-noise")
@dataclass(frozen=True, kw_only=True)
class GaussianNoise(Attack):
    """Add N(0, sigma^2) noise (sigma = eps), clipped to the bounds; ``repeats`` draws per point.

    A point counts as broken when any draw fools the model; draws stop on broken points.
    """

    norm = "gaussian"
    loss = None
    gradient_free = True
    repeats: int = 10

    def _tries(self) -> int:
        return self.repeats

    @torch.no_grad()
    def _single_run(
        self, model: nn.Module, points: Points, *, eps: float, restart: int, **settings: Any
    ) -> RunOutcome:
        """One draw per point; without an objective, the latest draw replaces the last."""
        noisy = (points.x0 + eps * torch.randn_like(points.x0)).clamp(*BOUNDS)
        broken = is_adversarial(model(noisy), points.labels, points.targets)
        return RunOutcome(x_adv=noisy, success=broken)


def pure_noise(
    shape: tuple[int, ...], mean: float, sigma: float, device: torch.device | str
) -> Tensor:
    """Images of pure N(mean, sigma^2) pixel noise, clipped to the bounds."""
    low, high = BOUNDS
    return (mean + sigma * torch.randn(shape, device=device)).clamp(low, high)


def grid_axes(side: int = GRID_SIDE) -> tuple[list[float], list[float]]:
    """The means (0 to 1) and sigmas (0.05 to 0.5) of a ``side`` x ``side`` pure-noise grid."""
    return torch.linspace(0.0, 1.0, side).tolist(), torch.linspace(0.05, 0.5, side).tolist()


def pure_noise_probe(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    means: Sequence[float] | None = None,
    sigmas: Sequence[float] | None = None,
    samples_per_cell: int = 64,
    class_names: Sequence[str] | None = None,
    advance: Advance | None = None,
) -> pd.DataFrame:
    """Classify pure noise over a mean x sigma grid (:func:`grid_axes`, 10 x 10, by default).

    One row per cell: the most frequent top-1 class, the share of draws naming it, and its mean
    softmax confidence -- does the model confidently name pure noise? ``advance`` hears each
    forward pass's share of the grid (for a progress bar).
    """
    default_means, default_sigmas = grid_axes()
    means = list(means) if means is not None else default_means
    sigmas = list(sigmas) if sigmas is not None else default_sigmas
    if samples_per_cell < 1 or not means or not sigmas:
        raise RobustkitError("the noise probe needs at least one mean, one sigma and one sample")
    device = device_of(model)
    cells = [(float(mean), float(sigma)) for mean in means for sigma in sigmas]
    shape = (samples_per_cell, *input_shape)
    probs = []
    with torch.no_grad():  # as many cells per forward pass as BATCH_ELEMENTS allows
        for group in _groups(cells, samples_per_cell, input_shape):
            noise = torch.cat([pure_noise(shape, mean, sigma, device) for mean, sigma in group])
            probs.extend(model(noise).softmax(dim=1).split(samples_per_cell))
            if advance is not None:
                advance(len(group) / len(cells))
    rows = []
    for (mean, sigma), cell in zip(cells, probs, strict=True):
        confidence, top = cell.max(dim=1)
        cls = int(top.mode().values)
        named = top == cls
        rows.append(
            {
                "mean": mean,
                "sigma": sigma,
                "top1_class": cls,
                "top1_name": _name(class_names, cls),
                "top1_share": named.float().mean().item(),
                "confidence": confidence[named].mean().item(),
                "max_confidence": confidence.max().item(),
            }
        )
    return pd.DataFrame(rows)


def pgd_from_noise(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    eps: float = 0.1,
    steps: int = 40,
    samples_per_class: int = 16,
    mean: float = 0.5,
    sigma: float = 0.25,
    max_targets: int = MAX_NOISE_TARGETS,
    advance: Advance | None = None,
) -> pd.DataFrame:
    """Start targeted L-inf PGD from pure noise towards every class in turn (towards
    ``max_targets`` evenly spaced classes of a model with more).

    One row per target class: the share of noise images turned into that class within eps of
    the noise, and the mean confidence reached (all steps run, to push the confidence).
    ``advance`` hears each group's share of the targets (for a progress bar).
    """
    device = device_of(model)
    attack = PGDLinf(steps=steps, random_start=False, early_stop=False)
    classes = _spread(num_classes, max_targets)
    rows = []
    for group in _groups(classes, samples_per_class, input_shape):
        noise = pure_noise((len(group) * samples_per_class, *input_shape), mean, sigma, device)
        targets = torch.tensor(group, device=device).repeat_interleave(samples_per_class)
        with torch.no_grad():
            start_pred = model(noise).argmax(dim=1)
        result = attack(model, noise, start_pred, eps=eps, targets=targets)
        with torch.no_grad():
            reached = model(result.x_adv).softmax(dim=1).gather(1, targets[:, None]).squeeze(1)
        for target, success, confidence in zip(
            group,
            result.success.split(samples_per_class),
            reached.split(samples_per_class),
            strict=True,
        ):
            rows.append(
                {
                    "target": target,
                    "eps": eps,
                    "success_rate": success.float().mean().item(),
                    "target_confidence": confidence.mean().item(),
                }
            )
        if advance is not None:
            advance(len(group) / len(classes))
    return pd.DataFrame(rows)


def _groups(items: list[T], rows_each: int, input_shape: tuple[int, int, int]) -> list[list[T]]:
    """``items`` (each ``rows_each`` images) in groups that fit one probe batch, at least one."""
    per_batch = max(1, BATCH_ELEMENTS // (rows_each * math.prod(input_shape)))
    return [items[i : i + per_batch] for i in range(0, len(items), per_batch)]


def _name(class_names: Sequence[str] | None, index: int) -> str:
    """The name of class ``index``; the index itself past the names (a dataset with fewer
    classes than the model)."""
    return class_names[index] if class_names and index < len(class_names) else str(index)


def _spread(num_classes: int, most: int) -> list[int]:
    """All class indices, or ``most`` of them evenly spaced from the first to the last."""
    if num_classes <= most:
        return list(range(num_classes))
    return torch.linspace(0, num_classes - 1, most).round().long().tolist()
