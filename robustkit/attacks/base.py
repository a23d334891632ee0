"""Attack base class: validate the inputs once, then run the subclass's algorithm."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.errors import RobustkitError
from robustkit.models.wrapper import BOUNDS, device_of


@dataclass(frozen=True)
class AttackResult:
    """Adversarial inputs with, per sample, whether the attack met its goal."""

    x_adv: Tensor
    success: Tensor
    adv_pred: Tensor
    # Minimum-norm attacks: per sample, the norm of the smallest adversarial found (inf if none).
    radius: Tensor | None = None
    # Randomized models: per sample, how many of the attack's fresh scoring passes are correct.
    correct_passes: Tensor | None = None


@dataclass(frozen=True, kw_only=True)
class Attack(ABC):
    """An evasion attack. Hyper-parameters are frozen fields; eps and the model come at call time.

    ``norm`` names the budget eps measures: ``"linf"``, ``"l2"``, ``"l1"`` or ``"gaussian"``
    (noise sigma).
    """

    norm: ClassVar[str]
    name: ClassVar[str] = ""
    iterative: ClassVar[bool] = False  # takes an audit's steps and restarts
    needs_generator: ClassVar[bool] = False  # searches a generator's range (``generator=``)
    minimum_norm: ClassVar[bool] = False  # seeks the smallest adversarial and reports its radius

    def __call__(
        self,
        model: nn.Module,
        inputs: Tensor,
        labels: Tensor,
        *,
        eps: float,
        targets: Tensor | None = None,
    ) -> AttackResult:
        """Attack ``inputs`` (pixels in [0, 1]); with ``targets``, aim for those classes."""
        device = device_of(model)
        inputs, labels, targets = validate_inputs(inputs, labels, targets, device)
        validate_eps(eps, self.norm)
        return self._run(model, inputs, labels, eps=float(eps), targets=targets)

    def describe(self) -> dict[str, Any]:
        """The name and hyper-parameters, JSON-ready (a module field becomes its name)."""
        fields = {
            field.name: _describe_value(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }
        return {"name": self.name, **fields}

    @abstractmethod
    def _run(
        self,
        model: nn.Module,
        inputs: Tensor,
        labels: Tensor,
        *,
        eps: float,
        targets: Tensor | None,
    ) -> AttackResult:
        """The algorithm, on validated inputs already on the model's device."""


def _describe_value(value: Any) -> Any:
    if isinstance(value, nn.Module):
        return getattr(value, "name", type(value).__name__)
    return value


def validate_inputs(
    inputs: Tensor, labels: Tensor, targets: Tensor | None, device: torch.device
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Check shapes, dtypes and bounds; move everything to ``device``."""
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point():
        raise RobustkitError("inputs must be a floating-point tensor of pixels in [0, 1]")
    if inputs.dim() != 4:
        raise RobustkitError(
            f"inputs must have shape (batch, channels, height, width), got {tuple(inputs.shape)}: "
            "add a batch dimension with x.unsqueeze(0)"
        )
    low, high = BOUNDS
    if inputs.numel() and (inputs.min() < low or inputs.max() > high):
        raise RobustkitError(
            f"pixels outside [{low:g}, {high:g}] (found {inputs.min().item():.3g} to "
            f"{inputs.max().item():.3g}): pass raw pixels scaled to [0, 1] and put the "
            "normalisation inside the model (RobustModel(mean=..., std=...))"
        )
    for name, tensor in (("labels", labels), ("targets", targets)):
        if tensor is None:
            continue
        if tensor.dim() != 1 or len(tensor) != len(inputs) or tensor.is_floating_point():
            raise RobustkitError(
                f"{name} must be a 1-D integer tensor with one class index per input "
                f"({len(inputs)}), got shape {tuple(tensor.shape)} and dtype {tensor.dtype}"
            )
    return (
        inputs.detach().to(device),
        labels.to(device),
        None if targets is None else targets.to(device),
    )


def validate_eps(eps: float, norm: str) -> None:
    """A budget must be non-negative, and an L-inf budget cannot exceed the pixel range."""
    if eps < 0:
        raise RobustkitError(f"eps must be >= 0, got {eps:g}")
    if norm == "linf" and eps > BOUNDS[1] - BOUNDS[0]:
        raise RobustkitError(
            f"an L-inf eps of {eps:g} exceeds the pixel range [0, 1]: use eps <= 1 "
            "(e.g. 8/255 = 0.031 for CIFAR-10, 0.3 for MNIST)"
        )


def is_adversarial(logits: Tensor, labels: Tensor, targets: Tensor | None) -> Tensor:
    """Per sample: the target class is predicted (targeted) or the label is not (untargeted)."""
    pred = logits.argmax(dim=1)
    return pred == targets if targets is not None else pred != labels


def attack_objective(
    logits: Tensor, labels: Tensor, targets: Tensor | None, loss: str = "ce"
) -> Tensor:
    """Per-sample quantity the attacker maximises: CE, margin or DLR, away from the label or
    towards the target.

    DLR (difference of logits ratio, Croce & Hein 2020) is the margin divided by the spread of
    the top logits, so it is invariant to shifting and to positively scaling the logits: it needs
    at least 3 classes, and 4 towards a target.
    """
    if loss == "ce":
        if targets is not None:
            return -F.cross_entropy(logits, targets, reduction="none")
        return F.cross_entropy(logits, labels, reduction="none")
    if loss == "margin":
        cls = targets if targets is not None else labels
        own = logits.gather(1, cls[:, None]).squeeze(1)
        others = logits.scatter(1, cls[:, None], float("-inf")).amax(dim=1)
        return own - others if targets is not None else others - own
    if loss == "dlr":
        return _dlr(logits, labels, targets)
    raise RobustkitError(f"unknown loss {loss!r}: use 'ce', 'margin' or 'dlr'")


def _dlr(logits: Tensor, labels: Tensor, targets: Tensor | None) -> Tensor:
    """Untargeted: -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3); targeted: -(z_y - z_t) /
    (z_pi1 - (z_pi3 + z_pi4) / 2), with z_pi the logits sorted in decreasing order."""
    needed = 3 if targets is None else 4
    if logits.shape[1] < needed:
        kind = "untargeted" if targets is None else "targeted"
        raise RobustkitError(
            f"the {kind} DLR loss needs at least {needed} classes, the model has "
            f"{logits.shape[1]}: use the CE or margin loss (e.g. apgd-ce) instead"
        )
    top = logits.topk(needed, dim=1).values
    own = logits.gather(1, labels[:, None]).squeeze(1)
    if targets is None:
        others = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
        return (others - own) / (top[:, 0] - top[:, 2] + 1e-12)
    aim = logits.gather(1, targets[:, None]).squeeze(1)
    return (aim - own) / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2 + 1e-12)


def perturbation_norm(delta: Tensor, norm: str) -> Tensor:
    """Per-sample size of a batch of perturbations in ``norm`` (``"linf"``, ``"l2"`` or
    ``"l1"``; noise sigma is measured as the per-pixel RMS)."""
    flat = delta.flatten(1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    if norm == "l2":
        return flat.norm(dim=1)
    if norm == "l1":
        return flat.abs().sum(dim=1)
    return flat.pow(2).mean(dim=1).sqrt()


def runner_up_classes(logits: Tensor, labels: Tensor, count: int) -> Tensor:
    """Per sample, the ``count`` classes with the highest logits other than the label, best
    first, shaped (N, count): the targets of AutoAttack's targeted attacks."""
    return logits.scatter(1, labels[:, None], float("-inf")).topk(count, dim=1).indices
