"""Projection onto a generator's range: argmin_z ||G(z) - x||^2 with z = tanh(w) in [-1, 1].

All R restarts of all B images are optimised together as one (R * B, d) tensor of latents, so a
projection costs L batched generator forward/backward passes and no Python loop over images or
restarts. Each latent's loss is its own squared error (summed, not averaged), so the path of one
latent does not depend on how many others share the batch: with the same seed, R restarts are a
prefix of R' > R restarts and can only do as well or worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from robustkit.errors import RobustkitError


class ImageGenerator(Protocol):
    """What projection needs of a generator: latents (N, latent_dim) in [-1, 1] to images
    (N, *output_shape) in [0, 1]."""

    latent_dim: int
    output_shape: tuple[int, ...]

    def __call__(self, z: Tensor) -> Tensor: ...


OPTIMIZERS = ("adam", "momentum")
TANH_LIMIT = 0.995  # keep initial latents off tanh's flat tails


@dataclass(frozen=True, kw_only=True)
class ProjectionConfig:
    """Defaults after Defense-GAN: L = 200 steps, R = 10 restarts, decaying learning rate."""

    steps: int = 200
    restarts: int = 10
    lr: float = 0.1
    optimizer: str = "adam"
    momentum: float = 0.9
    final_lr_fraction: float = 0.1  # cosine decay of the learning rate down to lr x this

    def __post_init__(self) -> None:
        if self.steps < 0 or self.restarts < 1:
            raise RobustkitError(
                f"projection needs steps >= 0 and restarts >= 1, got {self.steps} and "
                f"{self.restarts}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise RobustkitError(
                f"unknown projection optimizer {self.optimizer!r}: use adam or momentum"
            )
        if self.lr <= 0:
            raise RobustkitError(f"projection lr must be > 0, got {self.lr:g}")


@dataclass(frozen=True)
class Projection:
    """Per image: the closest generated image found, its latent and its squared error."""

    x_proj: Tensor
    z: Tensor
    error: Tensor  # ||G(z) - x||^2 summed over pixels


def check_generator_input(generator: ImageGenerator, x: Tensor) -> None:
    """Images must be a float (N, C, H, W) batch of the generator's output shape."""
    shape = generator.output_shape
    if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != shape:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise RobustkitError(
            f"the generator makes images of shape {shape} but got a batch of shape {got}: "
            f"use a generator trained on this dataset (channels x height x width = {shape})"
        )
    if not x.is_floating_point():
        raise RobustkitError("images must be a floating-point tensor of pixels in [0, 1]")


def project(
    generator: ImageGenerator,
    x: Tensor,
    config: ProjectionConfig | None = None,
    *,
    seed: int | None = None,
) -> Projection:
    """Project every image of ``x`` onto the range of ``generator`` (eval mode, frozen weights).

    With ``seed`` the restarts' start points are reproducible; otherwise they come from the
    global random generator (the defense's randomness).
    """
    config = config or ProjectionConfig()
    check_generator_input(generator, x)
    x = x.detach()
    batch, restarts = len(x), config.restarts
    rng = None if seed is None else torch.Generator(device=x.device).manual_seed(seed)
    # Restart-major layout: the first R x B latents are the same for any R' >= R.
    z0 = torch.rand(restarts, batch, generator.latent_dim, generator=rng, device=x.device)
    w = torch.atanh((2 * z0 - 1) * TANH_LIMIT).flatten(0, 1).requires_grad_(True)
    target = x.repeat(restarts, 1, 1, 1)
    optimizer = _optimizer(w, config)
    with torch.enable_grad():
        for step in range(config.steps):
            for group in optimizer.param_groups:
                group["lr"] = _lr(config, step)
            error = (generator(torch.tanh(w)) - target).square().flatten(1).sum(dim=1)
            (grad,) = torch.autograd.grad(error.sum(), w)
            w.grad = grad
            optimizer.step()
    with torch.no_grad():
        z = torch.tanh(w)
        x_all = generator(z)
        error = (x_all - target).square().flatten(1).sum(dim=1).view(restarts, batch)
        best = error.argmin(dim=0)
        images = torch.arange(batch, device=x.device)
        pick = best * batch + images
        return Projection(x_proj=x_all[pick], z=z[pick], error=error[best, images])


def _optimizer(w: Tensor, config: ProjectionConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam([w], lr=config.lr)
    return torch.optim.SGD([w], lr=config.lr, momentum=config.momentum)


def _lr(config: ProjectionConfig, step: int) -> float:
    """Cosine decay from lr to lr x final_lr_fraction over the steps."""
    low = config.lr * config.final_lr_fraction
    progress = step / max(config.steps - 1, 1)
    return low + (config.lr - low) * 0.5 * (1 + math.cos(math.pi * progress))
