"""Universal adversarial perturbations: one perturbation within eps, added to every input, that
changes the model's prediction on most of them (Moosavi-Dezfooli et al. 2017).

Crafted by stochastic projected gradient ascent on one delta (the batched variant of Shafahi et
al. 2020, "Universal adversarial training", Algorithm 1, with the sign-gradient steps of PGD in
place of their SGD steps): each step takes a minibatch of the crafting images, the gradient of
their mean loss with respect to delta, a steepest-ascent step of the norm (the gradient's sign for
L-inf, the normalised gradient for L2) and the projection back into the eps-ball. The loss is the
cross-entropy away from the model's own clean prediction, capped at ``loss_cap`` as in Shafahi et
al., so that the points delta already fools stop pulling it and the others decide its direction.
Unlike the original algorithm (per image, a DeepFool step on each one not yet fooled, as ART's
``UniversalPerturbation`` runs it), every pass is a batch on the model's device.

Not an :class:`~robustkit.attacks.base.Attack`: it returns one delta for all inputs, crafted on
images of their own (a training split), and is scored on others (:func:`score_universal`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.attacks.base import require_counts, validate_eps, validate_inputs
from robustkit.attacks.geometry import geometry
from robustkit.errors import RobustkitError
from robustkit.models.wrapper import BOUNDS, device_of

NORMS = ("linf", "l2")
MIN_IMAGES = 10  # fewer crafting images than classes cannot show what fools "most inputs"
PREDICT_BATCH = 500  # images per forward pass where no gradient is taken


@dataclass(frozen=True)
class Universal:
    """One universal perturbation: ``perturbation`` (C, H, W, on the CPU) within ``eps`` in
    ``norm``, its fooling rate on the images it was crafted on, and the images the crafting put
    through the model (``passes``: every forward pass counts its batch, a gradient step too)."""

    perturbation: Tensor
    norm: str
    eps: float
    fooling_rate: float
    passes: int


@dataclass(frozen=True)
class UniversalScore:
    """A universal perturbation applied to held-out images: the model's predictions on the clean
    and the perturbed images, and the labels."""

    clean_pred: Tensor
    adv_pred: Tensor
    labels: Tensor

    @property
    def fooling_rate(self) -> float:
        """Share of the images whose predicted class the perturbation changes (Moosavi-Dezfooli
        et al.'s measure: it needs no label)."""
        return float((self.adv_pred != self.clean_pred).float().mean())

    @property
    def clean_accuracy(self) -> float:
        return float((self.clean_pred == self.labels).float().mean())

    @property
    def accuracy(self) -> float:
        """Share of the perturbed images classified correctly."""
        return float((self.adv_pred == self.labels).float().mean())

    @property
    def robust_accuracy(self) -> float:
        """Share of the images classified correctly both clean and perturbed (an audit's robust
        accuracy: a point misclassified clean counts as broken)."""
        both = (self.clean_pred == self.labels) & (self.adv_pred == self.labels)
        return float(both.float().mean())


@dataclass(frozen=True, kw_only=True)
class UniversalPGD:
    """Stochastic projected sign-gradient ascent on one perturbation (see the module docstring).

    ``epochs`` passes over the crafting images in seeded random minibatches of ``batch_size``;
    the step is ``rel_stepsize * eps``, decayed to a tenth of it over the run (cosine), which
    settles delta where the last minibatches left it; ``loss_cap`` caps each image's
    cross-entropy; ``seed`` fixes the minibatch order. The defaults were chosen on MNIST
    (zoo:mnist-cnn, L-inf 0.3 and L2 3, three seeds): small batches and large steps fool more
    held-out images than batches of 100 or steps of a tenth of eps.
    """

    norm: str = "linf"
    epochs: int = 10
    batch_size: int = 32
    rel_stepsize: float = 0.5
    loss_cap: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise RobustkitError(
                f"unknown norm {self.norm!r} for a universal perturbation: use {' or '.join(NORMS)}"
            )
        require_counts(self, "epochs", "batch_size")
        for name in ("rel_stepsize", "loss_cap"):
            if not getattr(self, name) > 0:
                raise RobustkitError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def name(self) -> str:
        """The attack name its audit rows carry: ``universal-linf`` or ``universal-l2``."""
        return f"universal-{self.norm}"

    def passes(self, num_images: int) -> int:
        """The images a call on ``num_images`` crafting images puts through the model: the clean
        predictions, every epoch's gradient steps and the final fooling rate."""
        return num_images * (self.epochs + 2)

    def __call__(self, model: nn.Module, images: Tensor, *, eps: float) -> Universal:
        """One perturbation within ``eps`` that changes ``model``'s prediction on as many of
        ``images`` (pixels in [0, 1], any device) as it can."""
        check_images(images)
        if not eps > 0:
            raise RobustkitError(f"eps must be > 0 for a universal perturbation, got {eps:g}")
        validate_eps(eps, self.norm)
        device = device_of(model)
        targets = predict(model, images, PREDICT_BATCH)
        ball = geometry(self.norm)
        delta = torch.zeros((1, *images.shape[1:]), device=device)
        radius = torch.tensor([float(eps)], device=device)
        generator = torch.Generator().manual_seed(self.seed)
        steps = self.epochs * math.ceil(len(images) / self.batch_size)
        step = 0
        for _ in range(self.epochs):
            for batch in torch.randperm(len(images), generator=generator).split(self.batch_size):
                size = self.rel_stepsize * eps * _decay(step, steps)
                grad = self._gradient(model, images[batch].to(device), targets[batch], delta)
                delta = ball.project_delta(delta + size * ball.direction(grad), radius)
                step += 1
        fooled = predict(model, images, PREDICT_BATCH, delta[0]) != targets
        return Universal(
            perturbation=delta[0].cpu(),
            norm=self.norm,
            eps=float(eps),
            fooling_rate=float(fooled.float().mean()),
            passes=self.passes(len(images)),
        )

    def _gradient(self, model: nn.Module, x: Tensor, targets: Tensor, delta: Tensor) -> Tensor:
        """The gradient with respect to ``delta`` of the minibatch's mean capped loss."""
        delta = delta.detach().requires_grad_(True)
        logits = model(apply_universal(x, delta))
        loss = F.cross_entropy(logits, targets.to(x.device), reduction="none")
        (grad,) = torch.autograd.grad(loss.clamp(max=self.loss_cap).mean(), delta)
        return grad


def _decay(step: int, steps: int) -> float:
    """Cosine decay from 1 at the first step to 0.1 at the last."""
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / max(steps - 1, 1)))


def apply_universal(images: Tensor, perturbation: Tensor) -> Tensor:
    """The perturbation added to every image, pixels clamped to [0, 1] afterwards."""
    return (images + perturbation.to(images)).clamp(*BOUNDS)


def check_images(images: Tensor) -> None:
    """Crafting or held-out images: (N, C, H, W) pixels in [0, 1], at least :data:`MIN_IMAGES`."""
    validate_inputs(images, torch.zeros(len(images), dtype=torch.long), None, images.device)
    if len(images) < MIN_IMAGES:
        raise RobustkitError(
            f"a universal perturbation needs at least {MIN_IMAGES} crafting images, got "
            f"{len(images)}: give more (e.g. --universal-samples 1000)"
        )


@torch.no_grad()
def predict(
    model: nn.Module, images: Tensor, batch_size: int, perturbation: Tensor | None = None
) -> Tensor:
    """The model's predicted classes on ``images`` (plus ``perturbation``), batch by batch on its
    device, returned on the CPU."""
    device = device_of(model)
    preds = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        if perturbation is not None:
            x = apply_universal(x, perturbation)
        preds.append(model(x).argmax(dim=1).cpu())
    return torch.cat(preds)


def score_universal(
    model: nn.Module,
    perturbation: Tensor,
    images: Tensor,
    labels: Tensor,
    batch_size: int = PREDICT_BATCH,
) -> UniversalScore:
    """``perturbation`` applied to held-out ``images``: the model's predictions before and
    after."""
    return UniversalScore(
        clean_pred=predict(model, images, batch_size),
        adv_pred=predict(model, images, batch_size, perturbation),
        labels=labels.cpu(),
    )
