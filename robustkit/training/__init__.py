"""Adversarial training: one loop, pluggable methods, the overfitting guard and checkpoints.

* ``loop.train``: the loop (``run.TrainRun`` holds its state: ``epoch()``, ``checkpoint()``,
  ``restore()``), writing the files listed in ``outputs``;
* ``methods``: natural, pgd, fgsm-rs, trades and manifold training, registered by name;
* ``guard``: the catastrophic-overfitting guard; ``holdout``: the accuracies it watches;
* ``fresh``: the model a run starts from (``arch:NAME`` and its dataset's normalisation).

Resume files use :mod:`robustkit.checkpoints`, the format GAN training shares.
"""

from robustkit.training.config import TrainConfig
from robustkit.training.fresh import DATASET_STATS, fresh_model, initial_model
from robustkit.training.guard import OverfittingGuard
from robustkit.training.loop import train
from robustkit.training.methods import TRAINING_METHODS, TrainingMethod, training_method
from robustkit.training.outputs import TrainResult, check_output, output_paths
from robustkit.training.run import StepStats, TrainRun

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
    "output_paths",
    "train",
    "training_method",
]
