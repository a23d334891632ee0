"""Adaptive-attack wrappers: expectation over transformation (EOT) for randomized models.

BPDA needs no wrapper here: a defense offers its own differentiable surrogate (the manifold
defense's backward is the identity through its projection), so attacking the defense module is
the BPDA attack, and attacking ``EOT(defense)`` is BPDA + EOT. Every registered attack works on
either unchanged, because both are plain ``nn.Module`` models.
"""

from __future__ import annotations

from torch import Tensor, nn

from robustkit.errors import RobustkitError


class EOT(nn.Module):
    """Average the logits of ``samples`` stochastic forward passes (Athalye et al. 2018).

    The passes run as one batch of ``samples x N`` inputs; the gradient of the averaged logits is
    the average of the per-pass gradients, which is what EOT asks for.
    """

    is_randomized = False

    def __init__(self, model: nn.Module, samples: int = 8) -> None:
        super().__init__()
        if samples < 1:
            raise RobustkitError(f"EOT needs samples >= 1, got {samples}")
        self.model = model
        self.samples = samples
        self.name = f"eot{samples}({getattr(model, 'name', type(model).__name__)})"
        self.input_shape = getattr(model, "input_shape", None)
        self.num_classes = getattr(model, "num_classes", None)

    def forward(self, x: Tensor) -> Tensor:
        logits = self.model(x.repeat(self.samples, *([1] * (x.dim() - 1))))
        return logits.view(self.samples, len(x), *logits.shape[1:]).mean(dim=0)
