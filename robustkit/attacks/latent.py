"""The overpowered latent-space attack (Jalal et al. 2019): move an input along a GAN's range.

The input is first projected onto the range, which gives a reference point ``G(z0)``. The attack
then ascends in latent space from ``z0`` (Adam on ``w`` with ``z = tanh(w)``): it maximises the
attack objective both at the on-range image ``G(z)`` and at the returned input
``x + clip(G(z) - G(z0))``, minus ``penalty`` times the squared part of the move that lies outside
the eps-ball. The returned perturbation is that move clipped to the L-inf ball and to the pixel
bounds, so the budget always holds.

Against a manifold-projection defense this is an adaptive attack that needs no gradient through
the projection: a point of the range projects (nearly) onto itself, so the defense sees roughly
``G(z)``. On such a model (it has ``generator`` and ``classifier`` modules) the search runs on the
classifier alone and only the final adversarials go through the whole defense.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn

from robustkit.attacks.base import Attack, attack_objective, is_adversarial, require_counts
from robustkit.attacks.registry import register_attack
from robustkit.attacks.runs import Kept, Points, RunOutcome
from robustkit.errors import RobustkitError
from robustkit.generative.projection import (
    TANH_LIMIT,
    ImageGenerator,
    ProjectionConfig,
    check_generator_input,
    project,
)


@dataclass(frozen=True)
class LatentSearch:
    """Per input: the adversarial ``x + move``, the moved range point ``G(z0) + move`` (equal to
    the on-range ``G(z)`` when the move ``G(z) - G(z0)`` fits the budget), both with the move
    clipped to the eps-ball, and whether the adversarial and ``G(z)`` fooled the network."""

    x_adv: Tensor
    range_adv: Tensor
    fooled: Tensor

    @classmethod
    def unmoved(cls, x: Tensor, reference: Tensor) -> LatentSearch:
        """The search before its first step: no move, nothing fooled."""
        fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        return cls(x_adv=x.clone(), range_adv=reference.clone(), fooled=fooled)


@dataclass(frozen=True, kw_only=True)
class _OnRange(Points):
    """Points with their projection onto the generator's range: latent ``z0`` and image
    ``reference`` = G(z0)."""

    z0: Tensor
    reference: Tensor


_ADAM_BETAS = (0.9, 0.999)


@register_attack("latent-overpowered")
@dataclass(frozen=True, kw_only=True)
class LatentOverpowered(Attack):
    """Search a generator's latent space for a misclassified image within eps (L-inf) of the input.

    ``generator`` maps (N, latent_dim) latents in [-1, 1] to images of the input's shape; without
    it the attacked model's own ``generator`` (a ManifoldProjectionDefense) is used. Restarts start
    from ``z0`` plus uniform noise of width ``restart_noise`` and run only on unbroken points.
    The defaults (Adam lr 0.1, penalty 0.1) were tuned on the bundled MNIST DCGAN at eps 0.3.
    """

    norm: ClassVar[str] = "linf"
    iterative: ClassVar[bool] = True
    needs_generator: ClassVar[bool] = True
    generator: nn.Module | None = None
    steps: int = 40
    restarts: int = 1
    lr: float = 0.1
    penalty: float = 0.1
    projection_steps: int = 100
    restart_noise: float = 0.2
    loss: str = "ce"
    early_stop: bool = True

    def __post_init__(self) -> None:
        require_counts(self, "steps", "restarts")
        if self.projection_steps < 0:
            raise RobustkitError(f"projection_steps must be >= 0, got {self.projection_steps}")
        if self.lr <= 0 or self.penalty < 0 or self.restart_noise < 0:
            raise RobustkitError("lr must be > 0, penalty and restart_noise >= 0")

    def search(
        self, model: nn.Module, inputs: Tensor, labels: Tensor, *, eps: float
    ) -> LatentSearch:
        """The latent search alone (untargeted), without the final pass through ``model``."""
        kept = self._search(model, self._points(model, inputs, labels, None, eps), float(eps))
        return LatentSearch(
            x_adv=kept.x_adv, range_adv=kept.extra["range_adv"], fooled=kept.success
        )

    def _search(self, model: nn.Module, points: Points, eps: float) -> Kept:
        """Project onto the range, then search from z0 and (restarts) from noisy copies on
        unbroken points; per point the latest search's adversarial and moved range point."""
        generator = self._generator_for(model)
        check_generator_input(generator, points.x0)
        network = search_network(model)
        config = ProjectionConfig(steps=self.projection_steps, restarts=1)
        z0 = project(generator, points.x0, config).z
        with torch.no_grad():
            reference = generator(z0)
        kept = Kept.start(points.x0, range_adv=reference.clone())
        on_range = _OnRange(
            x0=points.x0, labels=points.labels, targets=points.targets, z0=z0, reference=reference
        )
        self._restarts(model, on_range, kept, eps=eps, generator=generator, network=network)
        return kept

    def _single_run(
        self, model: nn.Module, points: Points, *, eps: float, restart: int, **settings: Any
    ) -> RunOutcome:
        """One latent ascent, from z0 (a restart: z0 plus uniform noise)."""
        assert isinstance(points, _OnRange)  # from _search
        start = points.z0
        if restart:
            noise = torch.empty_like(start).uniform_(-self.restart_noise, self.restart_noise)
            start = (start + noise).clamp(-1, 1)
        found = self._ascend(settings["network"], settings["generator"], points, start, eps)
        return RunOutcome(
            x_adv=found.x_adv, success=found.fooled, extra={"range_adv": found.range_adv}
        )

    def _generator_for(self, model: nn.Module) -> ImageGenerator:
        generator = (
            self.generator if self.generator is not None else getattr(model, "generator", None)
        )
        if not isinstance(generator, nn.Module):
            raise RobustkitError(
                f"attack {self.name!r} searches a generator's range but none was given: audit a "
                "defended model (--defense manifold:zoo:mnist-dcgan) or create the attack with "
                "generator=..."
            )
        if not isinstance(getattr(generator, "latent_dim", None), int) or not hasattr(
            generator, "output_shape"
        ):
            raise RobustkitError(
                f"the generator {type(generator).__name__} must declare latent_dim (an int) and "
                "output_shape (channels, height, width) attributes"
            )
        return cast(ImageGenerator, generator.eval())  # batch norm must not track attack latents

    def _ascend(
        self,
        network: nn.Module,
        generator: ImageGenerator,
        points: _OnRange,
        z_start: Tensor,
        eps: float,
    ) -> LatentSearch:
        """One latent ascent from ``z_start`` (with early stop, a point leaves the batch at its
        first iterate that fools ``network``)."""
        x, labels, targets, reference = points.x0, points.labels, points.targets, points.reference
        w = torch.atanh(z_start.clamp(-TANH_LIMIT, TANH_LIMIT))
        first, second = torch.zeros_like(w), torch.zeros_like(w)
        out = LatentSearch.unmoved(x, reference)
        alive = torch.arange(len(x), device=x.device)
        for step in range(self.steps + 1):
            w_alive = w[alive].requires_grad_(True)
            alive_targets = None if targets is None else targets[alive]
            with torch.enable_grad():
                on_range = generator(torch.tanh(w_alive))
                move = on_range - reference[alive]
                clipped = move.clamp(-eps, eps)
                candidate = (x[alive] + clipped).clamp(0, 1)
                logits_adv, logits_range = network(candidate), network(on_range)
                hit = is_adversarial(logits_adv, labels[alive], alive_targets) & is_adversarial(
                    logits_range, labels[alive], alive_targets
                )
                outside = (move.abs() - eps).clamp(min=0).square().flatten(1).sum(dim=1)
                objective = (
                    attack_objective(logits_adv, labels[alive], alive_targets, self.loss)
                    + attack_objective(logits_range, labels[alive], alive_targets, self.loss)
                    - self.penalty * outside
                )
            out.x_adv[alive] = candidate.detach()
            out.range_adv[alive] = (reference[alive] + clipped).detach().clamp(0, 1)
            out.fooled[alive] = hit
            if step == self.steps:
                break
            keep = ~hit if self.early_stop else torch.ones_like(hit)
            (grad,) = torch.autograd.grad(objective.sum(), w_alive)
            moving = alive[keep]
            w[moving] = _adam_ascent(
                w_alive.detach()[keep], grad[keep], first, second, moving, step + 1, self.lr
            )
            alive = moving
            if alive.numel() == 0:
                break
        return out


def _adam_ascent(
    w: Tensor, grad: Tensor, first: Tensor, second: Tensor, rows: Tensor, step: int, lr: float
) -> Tensor:
    """One Adam step up ``grad`` for ``rows`` of the moment buffers (updated in place).

    Written out because torch.optim.Adam updates whole tensors, and here the points already
    broken must leave the batch without their latents moving further.
    """
    beta1, beta2 = _ADAM_BETAS
    first[rows] = beta1 * first[rows] + (1 - beta1) * grad
    second[rows] = beta2 * second[rows] + (1 - beta2) * grad.square()
    m_hat = first[rows] / (1 - beta1**step)
    v_hat = second[rows] / (1 - beta2**step)
    return w + lr * m_hat / (v_hat.sqrt() + 1e-8)


def search_network(model: nn.Module) -> nn.Module:
    """The network a latent search differentiates: a projection defense's classifier (points of
    the generator's range pass its projection nearly unchanged), else the model itself."""
    classifier = getattr(model, "classifier", None)
    if isinstance(getattr(model, "generator", None), nn.Module) and isinstance(
        classifier, nn.Module
    ):
        return classifier
    return model
