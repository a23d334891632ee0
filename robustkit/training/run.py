"""The state of one training run: one epoch at a time, checkpointed and restored whole."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from robustkit.checkpoints import load_checkpoint, save_checkpoint
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel
from robustkit.training.config import TrainConfig
from robustkit.training.guard import OverfittingGuard
from robustkit.training.holdout import ACCURACY_KEYS, Holdout, split_holdout
from robustkit.training.methods import TrainingMethod, training_method

log = logging.getLogger(__name__)

KIND = "training"  # the kind of checkpoint a run writes


@dataclass(frozen=True)
class StepStats:
    """What the progress display shows after each optimiser step."""

    epoch: int
    step: int
    steps_per_epoch: int
    loss: float
    train_accuracy: float
    holdout: dict[str, float]


@dataclass
class TrainRun:
    """Model, optimiser, schedule, RNG, guard, best weights and history of one run.

    ``epoch()`` advances it, ``checkpoint()`` saves all of it (``torch.load(weights_only=True)``
    loadable) and ``restore()`` loads it back, so that a resumed run ends with the same weights
    as an uninterrupted one.
    """

    config: TrainConfig
    model: RobustModel
    method: TrainingMethod
    holdout: Holdout
    x_train: Tensor
    y_train: Tensor
    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    shuffle: torch.Generator  # the minibatch order; attacks draw from the global RNG
    best_state: dict[str, Tensor]
    guard: OverfittingGuard = field(default_factory=OverfittingGuard)
    history: list[dict[str, Any]] = field(default_factory=list)
    last_check: dict[str, float] = field(default_factory=dict)
    collapsed: bool = False

    @classmethod
    def start(cls, model: RobustModel, x: Tensor, y: Tensor, config: TrainConfig) -> TrainRun:
        """A fresh run on images ``x`` and labels ``y``, seeded by ``config.seed``."""
        holdout, x_train, y_train = split_holdout(x, y, config, model.device)
        total_steps = math.ceil(len(x_train) / config.batch_size) * config.epochs
        torch.manual_seed(config.seed)
        shuffle = torch.Generator().manual_seed(config.seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        return cls(
            config=config,
            model=model,
            method=training_method(config.method).create(config, model.device),
            holdout=holdout,
            x_train=x_train,
            y_train=y_train,
            optimizer=optimizer,
            scheduler=LambdaLR(optimizer, _cyclic(total_steps)),
            shuffle=shuffle,
            best_state=_copy_state(model.model),
        )

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.x_train) / self.config.batch_size)

    @property
    def finished(self) -> bool:
        """Every epoch done, or stopped on catastrophic overfitting."""
        return self.collapsed or len(self.history) >= self.config.epochs

    def epoch(self, on_step: Callable[[StepStats], None] | None = None) -> dict[str, Any]:
        """Train the next epoch (to its end or a collapse); append and return its metrics row."""
        config, index, steps = self.config, len(self.history), self.steps_per_epoch
        started = time.perf_counter()
        order = torch.randperm(len(self.x_train), generator=self.shuffle)
        loss_sum, correct, seen, train_seconds, eps = 0.0, 0, 0, 0.0, config.eps
        for step in range(steps):
            tick = time.perf_counter()
            at = index * steps + step + 1  # optimiser steps taken after this one
            eps = self._eps(at)
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            x, y = self.x_train[idx].to(self.model.device), self.y_train[idx].to(self.model.device)
            loss, logits = self._update(x, y, eps)
            train_seconds += time.perf_counter() - tick
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(dim=1) == y).sum())
            seen += len(y)
            if config.check_every and at % config.check_every == 0:
                self._check(at)
                if self.collapsed:
                    break
            if on_step is not None:
                stats = StepStats(
                    index, step, steps, loss_sum / seen, correct / seen, self.last_check
                )
                on_step(stats)
        end = (index + 1) * steps
        if not self.collapsed and not (config.check_every and end % config.check_every == 0):
            self._check(end)
        row = {
            "epoch": index + 1,
            "lr": self.scheduler.get_last_lr()[0],
            "train_eps": eps,
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            **self.last_check,
            "train_seconds": train_seconds,
            "epoch_seconds": time.perf_counter() - started,
        }
        self.history.append(row)
        _log_epoch(row, config.epochs)
        return row

    def roll_back(self) -> None:
        """Put the best weights the guard saw back into the model."""
        self.model.model.load_state_dict(self.best_state)
        log.warning("stopped training; restored the weights of step %d", self.guard.best_at)

    def checkpoint(self, path: Path) -> None:
        """Save everything ``restore`` needs, atomically, with plain types and tensors only."""
        state = {
            "epoch": len(self.history),
            "config": dataclasses.asdict(self.config),
            "num_train": len(self.x_train),
            "model": self.model.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "shuffle": self.shuffle.get_state()},
            "guard": dataclasses.asdict(self.guard),
            "best_model": self.best_state,
            "history": self.history,
        }
        save_checkpoint(path, state, kind=KIND)

    def restore(self, path: Path) -> None:
        """Continue the interrupted run saved at ``path``: same options, data and model."""
        state = load_checkpoint(path, kind=KIND)
        mismatched = self.config.mismatches(state["config"])
        if state["num_train"] != len(self.x_train):
            mismatched.append(f"{state['num_train']} training images")
        if mismatched:
            raise RobustkitError(
                f"checkpoint {path} was made with {', '.join(mismatched)}: resume with the "
                "options and data of the interrupted run"
            )
        try:
            self.model.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise RobustkitError(
                f"checkpoint {path} does not fit the model ({str(exc).splitlines()[0]}): resume "
                "with the --model of the interrupted run"
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        self.shuffle.set_state(state["rng"]["shuffle"])
        self.guard = OverfittingGuard(**state["guard"])
        self.best_state = state["best_model"]
        self.history = list(state["history"])
        self.last_check = {key: self.history[-1][key] for key in ACCURACY_KEYS}

    def _eps(self, at: int) -> float:
        """The training budget at optimiser step ``at`` (1-based) of the eps ramp."""
        warmup_steps = self.config.eps_warmup * self.steps_per_epoch
        if not warmup_steps:
            return self.config.eps
        return self.config.eps * min(1.0, at / warmup_steps)

    def _update(self, x: Tensor, y: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        """One optimiser step on the method's loss; (loss, logits)."""
        loss, logits = self.method.loss(self.model, x, y, eps)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return loss, logits

    def _check(self, at: int) -> None:
        """Measure the held-out accuracies after step ``at``; feed the guard where the method
        and the config want it, keeping the best weights; a collapse sets ``collapsed``."""
        self.last_check = self.holdout.accuracy(self.model)
        if not (self.config.guard and self.method.guarded):
            return
        fgsm, pgd = self.last_check["fgsm_accuracy"], self.last_check["pgd_accuracy"]
        self.collapsed = self.guard.update(at, fgsm, pgd)
        if self.guard.is_best(at):
            self.best_state = _copy_state(self.model.model)


def _cyclic(total_steps: int) -> Callable[[int], float]:
    """LR multiplier: 0 -> 1 at 2/5 of the run -> 0 (Wong et al.'s one-cycle schedule)."""
    peak = max(1.0, 0.4 * total_steps)

    def factor(step: int) -> float:
        if step <= peak:
            return step / peak
        return max(0.0, (total_steps - step) / max(1.0, total_steps - peak))

    return factor


def _copy_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _log_epoch(row: dict[str, Any], epochs: int) -> None:
    log.info(
        "epoch %d/%d: loss %.4f, held-out clean %.1f%%, FGSM %.1f%%, PGD %.1f%% (%.0f s)",
        row["epoch"],
        epochs,
        row["train_loss"],
        100 * row["clean_accuracy"],
        100 * row["fgsm_accuracy"],
        100 * row["pgd_accuracy"],
        row["epoch_seconds"],
    )
