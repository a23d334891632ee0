"""What an attacker may ask of a model: gradients (the model itself), scores or labels only.

A model deployed behind an API answers queries and nothing else. :func:`restrict` wraps a model
so that an attack given the wrapper gets no more than the access level grants: the scores-only
wrapper returns detached logits computed without autograd, the labels-only wrapper a detached
one-hot of the top-1 class. Neither registers the inner model as a submodule, so its parameters,
buffers and state dict stay out of reach of ``parameters()``, ``state_dict()`` and hooks on the
wrapper (a zero-size buffer only carries the device).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.access_levels import check_access
from robustkit.models.wrapper import device_of


class _Restricted(nn.Module):
    """A model answering queries only: the inner model lives outside the module tree."""

    access: str
    _query: nn.Module

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_query", model)  # not a submodule: no parameters leak
        self.register_buffer("_device", torch.empty(0, device=device_of(model)), persistent=False)
        self.name = getattr(model, "name", type(model).__name__)
        self.input_shape = getattr(model, "input_shape", None)
        self.num_classes = getattr(model, "num_classes", None)
        self.classes = getattr(model, "classes", None)
        self.eval()

    @torch.no_grad()
    def _logits(self, x: Tensor) -> Tensor:
        logits: Tensor = self._query(x.detach())
        return logits

    def extra_repr(self) -> str:
        return f"name={self.name!r}, access={self.access!r}"


class ScoresOnly(_Restricted):
    """The model's logits, detached and computed without autograd: no gradient reaches the
    caller (``autograd.grad`` on them fails, as an API's answers would)."""

    access = "scores"

    def forward(self, x: Tensor) -> Tensor:
        return self._logits(x).detach()


class LabelsOnly(_Restricted):
    """The model's top-1 class as a one-hot float row (1.0 at that class, 0.0 elsewhere),
    detached: the ``argmax`` an attack takes is the model's, and nothing else comes back."""

    access = "labels"

    def forward(self, x: Tensor) -> Tensor:
        logits = self._logits(x)
        return F.one_hot(logits.argmax(dim=1), logits.shape[1]).to(logits.dtype).detach()


def restrict(model: nn.Module, access: str) -> nn.Module:
    """``model`` as an attacker with ``access`` sees it: itself for ``"gradients"``, else a
    scores-only or labels-only wrapper."""
    if check_access(access) == "gradients":
        return model
    return ScoresOnly(model) if access == "scores" else LabelsOnly(model)
