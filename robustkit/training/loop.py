"""The training loop: an epoch at a time, a checkpoint after each, the outputs at the end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from robustkit.data import DatasetInfo, dataset_tensors
from robustkit.models import RobustModel
from robustkit.training.config import TrainConfig
from robustkit.training.outputs import TrainResult, check_output, write_outputs
from robustkit.training.run import StepStats, TrainRun

log = logging.getLogger(__name__)


def train(
    model: RobustModel,
    data: DatasetInfo,
    config: TrainConfig,
    *,
    out: str | Path,
    resume: str | Path | None = None,
    on_step: Callable[[StepStats], None] | None = None,
    metadata: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data``; checkpoint every epoch; write weights, JSON and metrics.

    With ``resume`` (the ``.ckpt.pt`` of an interrupted run with the same options and data) the
    run continues where it stopped and ends with the weights of an uninterrupted one.
    """
    paths = check_output(Path(out))
    started = time.perf_counter()
    run = TrainRun.start(model, *dataset_tensors(data), config)
    if resume is not None:
        run.restore(Path(resume))
        log.info("resuming from %s at epoch %d", resume, len(run.history) + 1)
    while not run.finished:
        run.epoch(on_step)
        pd.DataFrame(run.history).to_csv(paths["metrics"], index=False)
        if run.collapsed:
            run.roll_back()
        else:
            run.checkpoint(paths["checkpoint"])
    model.eval()
    final = run.holdout.accuracy(model)
    meta = write_outputs(
        run, data, paths, holdout_accuracy=final, started=started, extra=metadata or {}
    )
    return TrainResult(
        model=model,
        history=run.history,
        weights=paths["weights"],
        metadata=meta,
        stopped_early=run.collapsed,
        paths=paths,
    )
