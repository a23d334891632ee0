"""Adversarial training: one loop, pluggable methods, the overfitting guard and checkpoints.

* ``loop.train``: the loop (``run.TrainRun`` holds its state: ``epoch()``, ``checkpoint()``,
  ``restore()``), writing the files listed in ``outputs``;
* ``methods``: natural, pgd, fgsm-rs, trades and manifold training, registered by name;
* ``guard``: the catastrophic-overfitting guard; ``holdout``: the accuracies it watches;
* ``checkpoint``: the resume-file format, shared with GAN training;
* ``fresh``: the model a run starts from (``arch:NAME`` and its dataset's normalisation).

The names below load on first use: GAN training imports ``robustkit.training.checkpoint``
alone, without the attacks that the methods import (which would import the GAN code back).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from robustkit.training.checkpoint import load_checkpoint, save_checkpoint
    from robustkit.training.config import TrainConfig
    from robustkit.training.fresh import DATASET_STATS, fresh_model, initial_model
    from robustkit.training.guard import OverfittingGuard
    from robustkit.training.loop import train
    from robustkit.training.methods import TRAINING_METHODS, TrainingMethod, training_method
    from robustkit.training.outputs import TrainResult, check_output, output_paths
    from robustkit.training.run import StepStats, TrainRun

_MODULE_OF = {
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "TrainConfig": "config",
    "DATASET_STATS": "fresh",
    "fresh_model": "fresh",
    "initial_model": "fresh",
    "OverfittingGuard": "guard",
    "train": "loop",
    "TRAINING_METHODS": "methods",
    "TrainingMethod": "methods",
    "training_method": "methods",
    "TrainResult": "outputs",
    "check_output": "outputs",
    "output_paths": "outputs",
    "StepStats": "run",
    "TrainRun": "run",
}
__all__ = [
    "DATASET_STATS",
    "TRAINING_METHODS",
    "OverfittingGuard",
    "StepStats",
    "TrainConfig",
    "TrainResult",
    "TrainRun",
    "TrainingMethod",
    "check_output",
    "fresh_model",
    "initial_model",
    "load_checkpoint",
    "output_paths",
    "save_checkpoint",
    "train",
    "training_method",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'robustkit.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"robustkit.training.{_MODULE_OF[name]}"), name)
