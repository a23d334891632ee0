"""Many stochastic passes of one model: EOT for attacking a randomized model, and scoring it.

A randomized model (input noise, random resizing, dropout left on) answers differently on every
pass, so one pass decides nothing. :func:`pass_logits` runs ``P`` passes of a batch as one batch
of ``P x N`` inputs; EOT (expectation over transformation, Athalye et al. 2018) averages a loss
over such passes, whose gradient is then the average of the per-pass gradients; :func:`score`
counts, per input, the passes that classify it as its label. Both the plain audit's attacks and
``audit --defense`` (through :class:`EOT`) go through :func:`pass_logits`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustkit.errors import RobustkitError


def pass_logits(model: nn.Module, x: Tensor, passes: int) -> Tensor:
    """The logits of ``passes`` passes of ``model`` on ``x``, shaped (passes, N, classes)."""
    if passes == 1:
        return model(x).unsqueeze(0)
    logits = model(x.repeat(passes, *([1] * (x.dim() - 1))))
    return logits.view(passes, len(x), *logits.shape[1:])


@dataclass(frozen=True)
class Score:
    """Per input, over ``passes`` fresh passes: how many classify it as its label, and the class
    predicted most often (ties: the smallest class index)."""

    correct: Tensor
    pred: Tensor
    passes: int


@torch.no_grad()
def score(model: nn.Module, x: Tensor, labels: Tensor, passes: int) -> Score:
    """``x`` scored over ``passes`` fresh passes of ``model``."""
    preds = pass_logits(model, x, passes).argmax(dim=2)
    return Score(correct=(preds == labels).sum(dim=0), pred=preds.mode(dim=0).values, passes=passes)


class EOT(nn.Module):
    """A model whose output is the mean logits of ``samples`` stochastic passes, for attacks that
    know nothing of EOT (the gradient of the mean is the mean of the per-pass gradients)."""

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
        return pass_logits(self.model, x, self.samples).mean(dim=0)
