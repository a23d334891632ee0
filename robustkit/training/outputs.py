"""What a training run writes beside its weights file, and the metadata it records.

Next to ``out`` (e.g. ``model.pt``):

* ``model.pt``: the inner classifier's plain state dict (``torch.load(weights_only=True)``);
* ``model.json``: metadata (architecture, dataset, eps, normalisation, accuracies, sha256);
* ``model.metrics.csv``: one row per epoch (loss, held-out clean / FGSM / PGD accuracy);
* ``model.ckpt.pt``: everything ``resume`` needs (model, optimiser, scheduler, RNG states,
  epoch, guard, history), also loadable with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import robustkit
from robustkit.auditing.results import ensure_writable_dir
from robustkit.data import DatasetInfo
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel
from robustkit.training.run import TrainRun


@dataclass
class TrainResult:
    """The trained model, the per-epoch history and where the outputs went."""

    model: RobustModel
    history: list[dict[str, Any]]
    weights: Path
    metadata: dict[str, Any]
    stopped_early: bool = False
    paths: dict[str, Path] = field(default_factory=dict)


def output_paths(out: Path) -> dict[str, Path]:
    """The files a run writes next to its weights file ``out``."""
    return {
        "weights": out,
        "metadata": out.with_suffix(".json"),
        "metrics": out.with_suffix(".metrics.csv"),
        "checkpoint": out.with_suffix(".ckpt.pt"),
    }


def check_output(out: Path) -> dict[str, Path]:
    """Fail before training when the outputs cannot be written."""
    if out.is_dir():
        raise RobustkitError(f"--out {out} is a folder: give a file name such as {out}/model.pt")
    ensure_writable_dir(out.parent)
    return output_paths(out)


def write_outputs(
    run: TrainRun,
    data: DatasetInfo,
    paths: dict[str, Path],
    *,
    holdout_accuracy: dict[str, float],
    started: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Save the classifier's weights and their metadata JSON (``extra`` merged in, sha256
    last); return the metadata. ``started`` is the run's ``time.perf_counter()`` start."""
    model = run.model
    torch.save(model.model.state_dict(), paths["weights"])
    meta = {
        "arch": type(model.model).__name__,
        "dataset": data.name,
        "num_train": len(run.x_train),
        "classes": data.classes,
        "input_shape": list(model.input_shape or data.input_shape),
        "num_classes": model.num_classes or len(data.classes),
        "mean": _rounded(model.mean),
        "std": _rounded(model.std),
        "config": dataclasses.asdict(run.config),
        "holdout_accuracy": holdout_accuracy,
        "stopped_early": run.collapsed,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "robustkit": robustkit.__version__,
        **extra,
        "sha256": hashlib.sha256(paths["weights"].read_bytes()).hexdigest(),
    }
    paths["metadata"].write_text(json.dumps(meta, indent=2))
    return meta


def _rounded(values: Tensor | None) -> list[float] | None:
    """Float32 buffer values as the decimals they were given as."""
    return None if values is None else [round(v, 6) for v in values.flatten().tolist()]
