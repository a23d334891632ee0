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


@dataclass(frozen=True, kw_only=True)
class Attack(ABC):
    """An evasion attack. Hyper-parameters are frozen fields; eps and the model come at call time.

    ``norm`` names the budget eps measures: ``"linf"``, ``"l2"`` or ``"gaussian"`` (noise sigma).
    """

    norm: ClassVar[str]
    name: ClassVar[str] = ""
    iterative: ClassVar[bool] = False  # takes an audit's steps and restarts
    needs_generator: ClassVar[bool] = False  # searches a generator's range (``generator=``)

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
    """Per-sample quantity the attacker maximises: CE or margin, away from the label or
    towards the target."""
    if loss == "ce":
        if targets is not None:
            return -F.cross_entropy(logits, targets, reduction="none")
        return F.cross_entropy(logits, labels, reduction="none")
    if loss == "margin":
        cls = targets if targets is not None else labels
        own = logits.gather(1, cls[:, None]).squeeze(1)
        others = logits.scatter(1, cls[:, None], float("-inf")).amax(dim=1)
        return own - others if targets is not None else others - own
    raise RobustkitError(f"unknown loss {loss!r}: use 'ce' or 'margin'")
