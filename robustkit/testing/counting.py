"""A model that counts the images it classifies, whoever calls it: how tests and benchmarks hold
an attack to its budget of model passes or queries."""

from __future__ import annotations

from torch import Tensor, nn


class CountingModel(nn.Module):
    """``model``, adding the batch size of every call to ``images``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.images = 0

    def forward(self, x: Tensor) -> Tensor:
        self.images += len(x)
        return self.model(x)
