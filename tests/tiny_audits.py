"""Shared pieces of the audit engine tests: a tiny seeded linear model with a quarter of its
points misclassified, and the saved outputs that two runs of one audit must share byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

COMPARED_FILES = ("results.csv", "summary.csv", "examples.csv", "examples.pt")


class Linear(nn.Module):
    """A seeded linear classifier of (2, 4, 4) inputs into 3 classes; ``batches`` records the
    size of every batch it was given."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(2 * 4 * 4, 3)
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(len(x))
        return self.fc(x.flatten(1))


def linear_case() -> tuple[Linear, tuple[torch.Tensor, torch.Tensor]]:
    """The model and 40 inputs labelled by it, a quarter relabelled so they start misclassified."""
    model = Linear()
    x = torch.rand(40, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    y[:10] = (y[:10] + 1) % 3
    model.batches.clear()
    return model, (x, y)


def saved_outputs(out: Path, files: tuple[str, ...] = COMPARED_FILES) -> dict[str, bytes]:
    """The bytes of an audit's saved files and its run.json less what varies between runs."""
    saved = {name: (out / name).read_bytes() for name in files}
    run = json.loads((out / "run.json").read_text())
    for varying in ("date", "wall_time_s", "command"):
        run.pop(varying)
    saved["run.json"] = json.dumps(run).encode()
    return saved
