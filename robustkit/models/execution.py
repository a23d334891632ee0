"""How a RobustModel runs its forward pass on an accelerator: autocast precision, channels_last
memory format and torch.compile. Attacks never see it: [0, 1] pixels go in, fp32 logits come out,
so every attack's arithmetic (steps, projections, losses) stays in fp32."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from robustkit.errors import RobustkitError
from robustkit.registry import unknown_name_error

PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


@dataclass(frozen=True)
class Execution:
    """``precision``: fp32, or autocast of the model's forward to bf16/fp16; ``channels_last``:
    NHWC weights and inputs (faster convolutions on CUDA, harmless on CPU); ``compile``:
    torch.compile the model's forward (slow first batch, recompiles as batches shrink)."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise unknown_name_error("precision", self.precision, PRECISIONS)

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, None for fp32."""
        return PRECISIONS[self.precision]

    def check_device(self, device: torch.device) -> None:
        """Refuse fp16 on CPU: no speed to gain there (few fp16 kernels), and fp16's narrow range
        can underflow input gradients into zeros that look like gradient masking."""
        if self.precision == "fp16" and device.type == "cpu":
            raise RobustkitError(
                "--precision fp16 needs a GPU: on CPU use --precision bf16 or fp32"
            )

    def prepare(self, module: nn.Module) -> None:
        """Convert ``module`` in place: channels_last weights, then a compiled forward (its
        state-dict keys stay the same)."""
        if self.channels_last:
            module.to(memory_format=torch.channels_last)
        if self.compile:
            module.compile()

    def inputs(self, x: Tensor) -> Tensor:
        """``x`` in the memory format the model runs in."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self, device: torch.device) -> AbstractContextManager[Any]:
        """The context the model's forward runs in."""
        self.check_device(device)
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)
