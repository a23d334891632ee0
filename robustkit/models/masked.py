"""Canaries: models that mask their gradients in the ways Athalye et al. (2018) and Carlini et al.
(2019) describe. None of them is robust; an evaluation must break them or say why it cannot.

Each wraps a classifier taking [0, 1] pixels. The factories wrap the bundled ``zoo:mnist-cnn`` and
load as ``--model robustkit.models.masked:quantized_mnist_cnn`` (and the others).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robustkit.models.loader import load_model

LOGIT_SCALE = 1e4  # enough to saturate float32 softmax on a confident MNIST model
LEVELS = 256  # 8-bit quantisation: invisible to the classifier, a zero gradient everywhere
NOISE_SIGMA = 0.1


class _Canary(nn.Module):
    """Keeps the wrapped classifier's name, input shape and class count visible."""

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model = model
        self.name = f"{kind}({getattr(model, 'name', type(model).__name__)})"
        self.input_shape = getattr(model, "input_shape", None)
        self.num_classes = getattr(model, "num_classes", None)


class ScaledLogits(_Canary):
    """Logits times a large constant: the same decisions, but cross-entropy saturates and its
    gradient underflows to zero (Carlini et al. 2019, section on masked gradients)."""

    def __init__(self, model: nn.Module, scale: float = LOGIT_SCALE) -> None:
        super().__init__(model, "scaled")
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) * self.scale


class QuantizedInput(_Canary):
    """Rounds the input to ``levels`` grey levels before classifying: shattered gradients, zero
    almost everywhere (Athalye et al. 2018, thermometer encoding and input quantisation)."""

    def __init__(self, model: nn.Module, levels: int = LEVELS) -> None:
        super().__init__(model, "quantized")
        self.levels = levels

    def forward(self, x: Tensor) -> Tensor:
        steps = self.levels - 1
        return self.model(torch.round(x * steps) / steps)


class NoisyInput(_Canary):
    """Adds fresh Gaussian noise to every input: stochastic gradients, randomized outputs
    (Athalye et al. 2018, randomized defenses; the fix is EOT)."""

    def __init__(self, model: nn.Module, sigma: float = NOISE_SIGMA) -> None:
        super().__init__(model, "noisy")
        self.sigma = sigma

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x + self.sigma * torch.randn_like(x)).clamp(0, 1))


def scaled_mnist_cnn() -> nn.Module:
    """``zoo:mnist-cnn`` with its logits scaled by 1e4."""
    return ScaledLogits(load_model("zoo:mnist-cnn", device="cpu"))


def quantized_mnist_cnn() -> nn.Module:
    """``zoo:mnist-cnn`` behind an 8-bit input quantisation."""
    return QuantizedInput(load_model("zoo:mnist-cnn", device="cpu"))


def noisy_mnist_cnn() -> nn.Module:
    """``zoo:mnist-cnn`` with Gaussian input noise (sigma 0.1) on every pass."""
    return NoisyInput(load_model("zoo:mnist-cnn", device="cpu"))
