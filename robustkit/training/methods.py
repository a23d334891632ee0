"""Training methods: each one owns its rules (attack, loss, norms, whether the guard applies).

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

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.attacks import PGDL2, Attack, GradientAttack, LatentOverpowered, PGDLinf
from robustkit.errors import RobustkitError
from robustkit.generative.zoo import resolve_generator
from robustkit.registry import Registry, unknown_name_error

if TYPE_CHECKING:
    from robustkit.training.config import TrainConfig

NORMS = {"linf": "L-inf", "l2": "L2"}
FGSM_RS_STEP = 1.25
PGD_STEP_BUDGET = 2.5  # total path length of PGD-k in units of eps: step = 2.5 * eps / k
MANIFOLD_PROJECTION_STEPS = 30  # a rough start point on the range is enough to train on


class TrainingMethod(ABC):
    """How one method turns a minibatch into a loss, and the options it accepts."""

    name: ClassVar[str]
    norms: ClassVar[tuple[str, ...]] = tuple(NORMS)
    uses_steps: ClassVar[bool] = True  # --steps sets its attack's iterations
    uses_generator: ClassVar[bool] = False
    # The guard watches pixel-space robustness: only for methods that aim for it.
    guarded: ClassVar[bool] = True

    @classmethod
    def check(cls, *, norm: str, steps: int, generator: str | None) -> None:
        """Reject options this method cannot train with, with a line naming the fix."""
        if norm not in NORMS:
            raise unknown_name_error("norm", norm, NORMS)
        if norm not in cls.norms:
            allowed = " or ".join(NORMS[n] for n in cls.norms)
            raise RobustkitError(
                f"{cls.name} trains under {allowed} only: use --norm {cls.norms[0]} or --method pgd"
            )
        if cls.uses_steps and steps < 1:
            raise RobustkitError(f"--steps must be >= 1 for {cls.name}, got {steps}")
        if cls.uses_generator and generator is None:
            raise RobustkitError(
                f"--method {cls.name} needs --generator (zoo:mnist-dcgan or a robustkit "
                "train-gan file)"
            )
        if generator is not None and not cls.uses_generator:
            users = [m.name for m in TRAINING_METHODS.values() if m.uses_generator]
            raise RobustkitError(
                f"--generator is only for --method {' or '.join(users)}: drop it or switch method"
            )

    @classmethod
    @abstractmethod
    def create(cls, config: TrainConfig, device: torch.device) -> TrainingMethod:
        """The method as ``config`` sets it up, its attack on ``device``."""

    @abstractmethod
    def loss(self, model: nn.Module, x: Tensor, y: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        """(loss, logits on the images trained on) for one minibatch of [0, 1] pixels at
        budget ``eps``; leaves ``model`` in train mode."""


TRAINING_METHODS: Registry[type[TrainingMethod]] = Registry("training method")
M = TypeVar("M", bound=type[TrainingMethod])


def register_method(cls: M) -> M:
    """Class decorator: make ``cls`` available as ``--method cls.name``."""
    TRAINING_METHODS.add(cls.name, cls)
    return cls


def training_method(name: str) -> type[TrainingMethod]:
    """The method called ``name``; an unknown one raises the shared did-you-mean error."""
    return TRAINING_METHODS.get(name)


def pgd_attack(norm: str, steps: int) -> GradientAttack:
    """PGD-k from a random start, step 2.5 x eps / k, without early stop."""
    cls = PGDLinf if norm == "linf" else PGDL2
    return cls(steps=steps, rel_stepsize=PGD_STEP_BUDGET / steps, early_stop=False)


def _adversarials(attack: Attack, model: nn.Module, x: Tensor, y: Tensor, eps: float) -> Tensor:
    """``attack``'s adversarials, crafted in eval mode; the model is back in train mode."""
    model.eval()
    x_adv = attack(model, x, y, eps=eps).x_adv
    model.train()
    return x_adv


@register_method
@dataclass(frozen=True)
class PGDTraining(TrainingMethod):
    """Madry et al.: cross-entropy on PGD adversarials only."""

    name: ClassVar[str] = "pgd"
    attack: Attack

    @classmethod
    def create(cls, config: TrainConfig, device: torch.device) -> TrainingMethod:
        return cls(pgd_attack(config.norm, config.steps))

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        logits = model(_adversarials(self.attack, model, x, y, eps))
        return F.cross_entropy(logits, y), logits


@register_method
@dataclass(frozen=True)
class FGSMRSTraining(PGDTraining):
    """Wong et al.: PGD training with one 1.25 x eps step from a random start."""

    name: ClassVar[str] = "fgsm-rs"
    norms: ClassVar[tuple[str, ...]] = ("linf",)
    uses_steps: ClassVar[bool] = False

    @classmethod
    def create(cls, config: TrainConfig, device: torch.device) -> TrainingMethod:
        return cls(PGDLinf(steps=1, rel_stepsize=FGSM_RS_STEP, random_start=True, early_stop=False))


@register_method
@dataclass(frozen=True)
class TradesTraining(TrainingMethod):
    """Zhang et al.: CE(clean) + beta x KL(clean || adversarial), PGD adversarials."""

    name: ClassVar[str] = "trades"
    attack: Attack
    beta: float

    @classmethod
    def create(cls, config: TrainConfig, device: torch.device) -> TrainingMethod:
        return cls(pgd_attack(config.norm, config.steps), config.beta)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        logits = model(_adversarials(self.attack, model, x, y, eps))
        clean = model(x)
        robust = F.kl_div(
            F.log_softmax(logits, dim=1), F.softmax(clean, dim=1), reduction="batchmean"
        )
        return F.cross_entropy(clean, y) + self.beta * robust, logits


@register_method
@dataclass(frozen=True)
class ManifoldTraining(TrainingMethod):
    """Jalal et al.: mean CE on clean images and on latent-space adversarials of the range."""

    name: ClassVar[str] = "manifold"
    norms: ClassVar[tuple[str, ...]] = ("linf",)
    uses_generator: ClassVar[bool] = True
    guarded: ClassVar[bool] = False  # it does not aim for pixel-space robustness
    attack: LatentOverpowered

    @classmethod
    def create(cls, config: TrainConfig, device: torch.device) -> TrainingMethod:
        spec = cast(str, config.generator)  # TrainConfig made sure it is given
        attack = LatentOverpowered(
            generator=resolve_generator(spec, device),
            steps=config.steps,
            projection_steps=MANIFOLD_PROJECTION_STEPS,
            early_stop=False,
        )
        return cls(attack)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        model.eval()
        range_adv = self.attack.search(model, x, y, eps=eps).range_adv
        model.train()
        logits = model(range_adv)
        return (F.cross_entropy(model(x), y) + F.cross_entropy(logits, y)) / 2, logits


@register_method
@dataclass(frozen=True)
class NaturalTraining(TrainingMethod):
    """Plain cross-entropy on clean images."""

    name: ClassVar[str] = "natural"
    uses_steps: ClassVar[bool] = False
    guarded: ClassVar[bool] = False  # no robustness to lose

    @classmethod
    def create(cls, config: TrainConfig, device: torch.device) -> TrainingMethod:
        return cls()

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        model.train()
        logits = model(x)
        return F.cross_entropy(logits, y), logits
