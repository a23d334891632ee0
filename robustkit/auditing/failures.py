"""A batch the model cannot get through: it raises, returns NaN or inf logits, or runs out of
memory on a single image.

Without ``skip_bad`` the audit stops there, naming the batch, its images' dataset indices and the
cause (:class:`BatchFailed`), the batches saved before it kept for ``--resume``. With it, the
batch's images get ``error`` rows, one per row the batch would have had: an outcome of their own,
counted in ``n`` and never as robust.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from robustkit.auditing.results import CORRUPTION, ERROR, ROW_COLUMNS
from robustkit.errors import RobustkitError

SHOWN_INDICES = 10  # dataset indices a message lists before it counts the rest
NONFINITE = "the model returned NaN or inf logits"
SINGLE_IMAGE_OOM = (
    "out of memory on a single image (the smallest batch): free memory (a GPU's: other jobs), "
    "or audit on another --device"
)


@dataclass(frozen=True)
class BatchFailure:
    """Batch ``batch`` of the audit failed: its images (dataset indices and labels) and why."""

    batch: int
    samples: list[int]
    labels: list[int]
    cause: str

    def describe(self) -> str:
        """``batch 3 (dataset indices 12, 40, 7) failed: RuntimeError: boom``."""
        shown = ", ".join(map(str, self.samples[:SHOWN_INDICES]))
        if len(self.samples) > SHOWN_INDICES:
            shown += f", ... ({len(self.samples)} images)"
        return f"batch {self.batch} (dataset indices {shown}) failed: {self.cause}"

    def saved(self) -> dict[str, Any]:
        """The failure as the progress folder and run.json keep it."""
        return asdict(self)


class BatchFailed(RobustkitError):
    """The audit stopped at a failing batch (the batches before it are saved)."""

    def __init__(self, failure: BatchFailure) -> None:
        self.failure = failure
        super().__init__(
            f"{failure.describe()}: fix the model, then resume (--resume); or skip such batches "
            "(--skip-bad), recording their images as errors"
        )


class ProbesFailed(RobustkitError):
    """The model failed in the noise probes, which run after every batch is saved."""

    def __init__(self, err: BaseException) -> None:
        super().__init__(f"the noise probes failed: {cause_of(err)}")


def failure_of(
    index: int, samples: Tensor, labels: Tensor, err: BaseException | None
) -> BatchFailure:
    """The failure of batch ``index`` raised as ``err`` (None: its logits were not finite)."""
    cause = NONFINITE if err is None else cause_of(err)
    return BatchFailure(index, samples.tolist(), labels.cpu().tolist(), cause)


def cause_of(err: BaseException) -> str:
    """What a failing model raised, in one line."""
    if is_out_of_memory(err):
        return SINGLE_IMAGE_OOM
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an allocation failure: CUDA's, the CPU allocator's or Python's."""
    if isinstance(err, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    return isinstance(err, RuntimeError) and "can't allocate memory" in str(err)


class LogitWatch:
    """Forward hooks on the attacked modules noting whether any output held a NaN or inf. The
    checks stay on the device; :meth:`tripped` reads them once per batch."""

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        self._checks: list[Tensor] = []
        unique = {id(module): module for module in modules}.values()
        self._handles: list[RemovableHandle] = [
            module.register_forward_hook(self._hook) for module in unique
        ]

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if isinstance(output, Tensor) and output.is_floating_point():
            self._checks.append(torch.isfinite(output.detach()).all())

    def tripped(self) -> bool:
        """Whether an output since the last call was not finite."""
        checks, self._checks = self._checks, []
        return bool(checks) and not bool(torch.stack(checks).all())

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def error_rows(keys: pd.DataFrame, failure: dict[str, Any]) -> pd.DataFrame:
    """The rows of a failed batch: for each row key (model, attack, norm, eps, with its passes)
    of the audit, one ``error`` row per image, never robust."""
    samples, labels = failure["samples"], failure["labels"]
    if keys.empty or not samples:
        return pd.DataFrame(columns=ROW_COLUMNS)
    repeated = keys.loc[keys.index.repeat(len(samples))].reset_index(drop=True)
    n = len(repeated)
    corrupted = repeated["norm"] == CORRUPTION
    frame = repeated.assign(
        sample=np.tile(samples, len(keys)),
        label=np.tile(labels, len(keys)),
        clean_pred=-1,
        adv_pred=-1,
        clean_correct=False,
        robust_correct=False,
        outcome=ERROR,
        broken_by="",
        perturbation=np.full(n, np.nan),
        radius=np.full(n, np.nan),
        queries=np.full(n, np.nan),
        corruption=repeated["attack"].where(corrupted, ""),
        severity=repeated["eps"].where(corrupted),
        clean_passes=0,
        correct_passes=0,
        chosen_passes=0,
    )
    return frame[ROW_COLUMNS]
