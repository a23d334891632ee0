"""`robustkit train`: adversarial training from the command line.

Registered in robustkit.cli as ``app.command("train")(clean_errors(train_command))``; its options
are :class:`~robustkit.commands.train_options.TrainOptions`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from robustkit.commands.console import logging_to, recorded_command, stderr, stdout
from robustkit.commands.records import takes_options
from robustkit.commands.train_options import TrainOptions
from robustkit.errors import RobustkitError

if TYPE_CHECKING:  # torch and the training code load when the command runs: --help stays quick
    from robustkit.data import DatasetInfo
    from robustkit.models import RobustModel
    from robustkit.training import StepStats, TrainConfig, TrainResult


@takes_options(TrainOptions)
def train_command(options: TrainOptions) -> None:
    """Train a model (adversarially) and write its weights, metadata and per-epoch metrics."""
    from robustkit.training import check_output, train

    config = _config(options)
    paths = check_output(options.out)
    if options.resume is not None and not options.resume.is_file():
        raise RobustkitError(f"--resume {options.resume} not found: give the .ckpt.pt of the run")
    model, info = _model_and_data(options)
    meta = {"model_spec": options.model, "command": recorded_command()}
    with logging_to(stderr), _progress() as on_step:
        result = train(
            model,
            info,
            config,
            out=options.out,
            resume=options.resume,
            on_step=on_step,
            metadata=meta,
        )
    _print_outcome(paths["weights"], result, options.eps)


def _config(options: TrainOptions) -> TrainConfig:
    """The training hyper-parameters: every field of TrainConfig is the option of its name."""
    from robustkit.training import TrainConfig

    names = [field.name for field in dataclasses.fields(TrainConfig)]
    return TrainConfig(**{name: getattr(options, name) for name in names})


def _model_and_data(options: TrainOptions) -> tuple[RobustModel, DatasetInfo]:
    """The training set and the model to train on it (fresh or fine-tuned), checked to classify
    its images."""
    from robustkit.data import load_dataset
    from robustkit.models import check_classifier
    from robustkit.training import initial_model

    info = load_dataset(
        options.dataset,
        root=options.data_root,
        train=True,
        num_samples=options.num_samples,
        seed=options.seed,
    )
    model = initial_model(
        options.model,
        info,
        seed=options.seed,
        device=options.device,
        output_index=options.output_index,
        output_key=options.output_key,
    )
    first, _ = info.dataset[0]
    check_classifier(model, first.unsqueeze(0).to(model.device))
    return model, info


def _print_outcome(weights: Path, result: TrainResult, eps: float) -> None:
    """One line on stdout: where the weights went and their held-out accuracies."""
    acc = result.metadata["holdout_accuracy"]
    stdout.print(
        f"wrote {weights} (held-out clean {acc['clean_accuracy']:.1%}, "
        f"FGSM {acc['fgsm_accuracy']:.1%}, PGD-10 {acc['pgd_accuracy']:.1%} at eps {eps:g}"
        f"{', stopped early on catastrophic overfitting' if result.stopped_early else ''})",
        highlight=False,
    )


@contextmanager
def _progress() -> Iterator[Callable[[StepStats], None]]:
    """A Rich progress bar on stderr (only on a terminal) and the callback that drives it."""
    from robustkit.progress import progress_bar

    bar = progress_bar("epoch {task.fields[epoch]}", stats=True)
    task = bar.add_task("train", total=None, epoch=0, stats="")

    def on_step(stats: StepStats) -> None:
        held = stats.holdout
        shown = f"loss {stats.loss:.3f}  train acc {stats.train_accuracy:.1%}"
        if held:
            shown += f"  held-out clean {held['clean_accuracy']:.1%} PGD {held['pgd_accuracy']:.1%}"
        bar.update(
            task,
            completed=stats.step + 1,
            total=stats.steps_per_epoch,
            epoch=stats.epoch + 1,
            stats=shown,
        )

    with bar:
        yield on_step
