"""The model of the fault tests (``--model tests/fault_model.py:mnist``): the bundled MNIST CNN,
whose forward fails on its K-th call when ``ROBUSTKIT_FAULT`` says so:

- ``raise:K`` raises a RuntimeError;
- ``nan:K`` returns NaN logits;
- ``pause:K`` creates the file ``ROBUSTKIT_FAULT_MARK`` and waits (a minute at most) until it is
  removed: a signal sent meanwhile lands in the middle of a batch, and a disk filled meanwhile is
  full at the batch's next write.

Unset, it is the bundled model: the same weights, hence the same manifest and the same numbers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from robustkit.models import RobustModel, load_model

PAUSE_S = 60.0


class Faulty(nn.Module):
    """``model`` with the fault ``ROBUSTKIT_FAULT`` on its K-th forward call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        fault = os.environ.get("ROBUSTKIT_FAULT")
        kind, _, at = fault.partition(":") if fault else ("", "", "0")
        self.kind, self.at, self.calls = kind, int(at), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at:
            if self.kind == "raise":
                raise RuntimeError(f"injected fault on forward call {self.calls}")
            if self.kind == "nan":
                return torch.full((len(x), 10), float("nan"))
            if self.kind == "pause":
                mark = Path(os.environ["ROBUSTKIT_FAULT_MARK"])
                mark.touch()
                deadline = time.monotonic() + PAUSE_S
                while mark.exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
        return self.model(x)


def mnist() -> RobustModel:
    base = load_model("zoo:mnist-cnn", device="cpu")
    assert base.mean is not None and base.std is not None
    return RobustModel(
        Faulty(base.model),
        mean=base.mean.flatten().tolist(),
        std=base.std.flatten().tolist(),
        input_shape=base.input_shape,
        num_classes=base.num_classes,
    )
