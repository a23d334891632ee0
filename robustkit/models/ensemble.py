"""Ensemble: several classifiers as one source model for transfer attacks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from robustkit.errors import RobustkitError

MODES = ("loss", "logits")


class Ensemble(nn.Module):
    """Members' outputs fused into one (batch, classes) output an attack can differentiate.

    ``mode="logits"`` returns the mean of the members' logits (Liu et al. 2017).
    ``mode="loss"`` returns the mean of the members' log-softmax, so the loss of the label,
    ``-out[y]``, is exactly the mean of the members' cross-entropies. Cross-entropy on that output
    renormalises it: it equals the mean member cross-entropy plus ``logsumexp(out) <= 0``, a term
    that is 0 when the members agree. No output that does not see the label can make the
    cross-entropy equal the mean member cross-entropy in general (cross-entropy is shift-invariant).
    """

    def __init__(self, members: Sequence[nn.Module], *, mode: str = "loss", name: str = "") -> None:
        super().__init__()
        if not members:
            raise RobustkitError("an ensemble needs at least one member model")
        if mode not in MODES:
            raise RobustkitError(f"unknown ensemble mode {mode!r}: use 'loss' or 'logits'")
        self.members = nn.ModuleList(members)
        self.mode = mode
        names = [getattr(m, "name", None) or type(m).__name__ for m in members]
        self.name = name or f"ensemble({'+'.join(names)})"
        self.input_shape = getattr(members[0], "input_shape", None)
        self.num_classes = getattr(members[0], "num_classes", None)

    def forward(self, x: Tensor) -> Tensor:
        outputs = [member(x) for member in self.members]
        if self.mode == "loss":
            outputs = [out.log_softmax(dim=1) for out in outputs]
        return torch.stack(outputs).mean(dim=0)
