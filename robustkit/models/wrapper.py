"""RobustModel: the one place that owns pixel bounds, normalisation, device and eval mode."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from robustkit.data.classes import ModelClasses
from robustkit.errors import RobustkitError
from robustkit.models.device import resolve_device
from robustkit.models.execution import Execution
from robustkit.models.outputs import OutputSelector

BOUNDS = (0.0, 1.0)


class RobustModel(nn.Module):
    """A classifier that takes pixels in [0, 1] and returns logits.

    Normalisation happens inside ``forward``, so attacks only ever see [0, 1] pixels. ``classes``
    names the outputs where the model's library knows them; ``execution`` sets the precision,
    memory format and compilation of the wrapped model's forward (logits always come back fp32).
    ``output_index`` / ``output_key`` say where the logits are when the wrapped model returns a
    tuple, dict or object (default: the first element, the ``logits`` key or attribute); one
    logit per sample is read as a binary classifier's (see :class:`OutputSelector`).
    """

    bounds: tuple[float, float] = BOUNDS

    def __init__(
        self,
        model: nn.Module,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        input_shape: tuple[int, int, int] | None = None,
        num_classes: int | None = None,
        name: str = "model",
        device: str | torch.device | None = None,
        classes: ModelClasses | None = None,
        execution: Execution | None = None,
        output_index: int | None = None,
        output_key: str | None = None,
    ) -> None:
        super().__init__()
        if classes is not None and num_classes not in (None, len(classes)):
            raise RobustkitError(
                f"the model names {len(classes)} classes but num_classes is {num_classes}: "
                "drop one of them or make them agree"
            )
        self.model = model
        self.name = name
        self.input_shape = input_shape
        self.num_classes = len(classes) if classes is not None else num_classes
        self.classes = classes
        self.execution = execution or Execution()
        self.outputs = OutputSelector(output_index, output_key)
        self.mean: Tensor | None
        self.std: Tensor | None
        if (mean is None) != (std is None):
            raise RobustkitError("give both --mean and --std, or neither")
        if mean is not None and std is not None:
            self.register_buffer("mean", torch.tensor(list(mean)).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(list(std)).view(1, -1, 1, 1))
        else:
            self.mean = None
            self.std = None
        self.to(resolve_device(device))
        self.execution.check_device(self.device)
        self.execution.prepare(self.model)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        with self.execution.autocast(x.device):
            output = self.model(self.execution.inputs(x))
        return self.outputs(output, len(x)).float()

    @property
    def device(self) -> torch.device:
        return device_of(self)


def device_of(model: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module with neither)."""
    for parameter in model.parameters():
        return parameter.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")
