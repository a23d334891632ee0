"""The training loop: adversarial training with per-epoch checkpoints, exact resume and metrics.

Outputs, next to ``out`` (e.g. ``model.pt``):

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
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader

import robustkit
from robustkit.attacks import Attack
from robustkit.auditing.results import ensure_writable_dir
from robustkit.data import DatasetInfo
from robustkit.defenses.adversarial_training import (
    AdversarialLoss,
    OverfittingGuard,
    check_method,
    monitor_attacks,
    training_attack,
)
from robustkit.errors import RobustkitError
from robustkit.generative.zoo import resolve_generator
from robustkit.models import RobustModel

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
MAX_TENSOR_BYTES = 4 * 2**30
MONITOR_STEPS = 10
ACCURACY_KEYS = ("clean_accuracy", "fgsm_accuracy", "pgd_accuracy")
# Per-dataset normalisation for fresh architectures (arch:NAME).
DATASET_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "mnist-sample": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
# What a resumed run must share with the interrupted one (everything but the bookkeeping).
_RESUME_KEYS = (
    "method",
    "eps",
    "norm",
    "steps",
    "epochs",
    "batch_size",
    "lr",
    "eps_warmup",
    "beta",
    "holdout",
    "check_every",
    "guard",
    "seed",
    "generator",
)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    The learning rate follows Wong et al.'s cyclic schedule: linear from 0 up to ``lr`` at 2/5 of
    the run, then down to 0 (Adam). ``eps_warmup`` epochs ramp the training eps linearly from 0.
    ``holdout`` training images are set aside to measure clean / FGSM / PGD accuracy after every
    epoch (and every ``check_every`` steps) for the metrics and the overfitting guard.
    """

    method: str = "pgd"
    eps: float = 0.3
    norm: str = "linf"
    steps: int = 7
    epochs: int = 10
    batch_size: int = 100
    lr: float = 5e-3
    eps_warmup: float = 0.0
    beta: float = 6.0
    holdout: int = 500
    check_every: int | None = None
    guard: bool = True
    seed: int = 0
    generator: str | None = None  # manifold: zoo:NAME or a generator file

    def __post_init__(self) -> None:
        check_method(self.method, self.norm)
        if self.eps < 0:
            raise RobustkitError(f"--eps must be >= 0, got {self.eps:g}")
        if self.norm == "linf" and self.eps > 1:
            raise RobustkitError(f"an L-inf --eps of {self.eps:g} exceeds the pixel range [0, 1]")
        for name in ("epochs", "batch_size", "holdout"):
            if getattr(self, name) < 1:
                raise RobustkitError(f"--{name.replace('_', '-')} must be >= 1")
        if self.lr <= 0 or self.eps_warmup < 0 or self.beta < 0:
            raise RobustkitError("--lr must be > 0, --eps-warmup and --beta >= 0")
        if self.check_every is not None and self.check_every < 1:
            raise RobustkitError("--check-every must be >= 1 step")
        if (self.method == "manifold") != (self.generator is not None):
            raise RobustkitError(
                "--method manifold needs --generator (zoo:mnist-dcgan or a robustkit train-gan "
                "file), and --generator is only for --method manifold"
            )


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


def dataset_tensors(info: DatasetInfo) -> tuple[Tensor, Tensor]:
    """The whole dataset as (images, labels) tensors, read once."""
    first, _ = info.dataset[0]
    size = len(info.dataset)  # type: ignore[arg-type]
    if size * first.numel() * first.element_size() > MAX_TENSOR_BYTES:
        raise RobustkitError(
            f"{info.name} is too large to train on in memory ({size} images of "
            f"{tuple(first.shape)}): use --num-samples"
        )
    xs, ys = [], []
    for x, y in DataLoader(info.dataset, batch_size=1000):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    return torch.cat(xs), torch.cat(ys).long()


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
    """Train ``model`` on ``data``; checkpoint every epoch; write weights, JSON and metrics."""
    paths = check_output(Path(out))
    started = time.perf_counter()
    x_all, y_all = dataset_tensors(data)
    if config.holdout >= len(x_all):
        raise RobustkitError(
            f"--holdout {config.holdout} leaves no training images out of {len(x_all)}: "
            "lower it or use more --num-samples"
        )
    split = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(config.seed))
    hold, keep = split[: config.holdout], split[config.holdout :]
    x_hold, y_hold = x_all[hold].to(model.device), y_all[hold].to(model.device)
    x_train, y_train = x_all[keep], y_all[keep]
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = config.eps_warmup * steps_per_epoch

    torch.manual_seed(config.seed)
    shuffle = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = LambdaLR(optimizer, _cyclic(total_steps))
    generator = resolve_generator(config.generator, model.device) if config.generator else None
    loss_fn = AdversarialLoss(
        config.method,
        training_attack(config.method, config.norm, config.steps, generator),
        config.beta,
    )
    monitors = monitor_attacks(config.norm, MONITOR_STEPS)
    guard = OverfittingGuard()
    best_state = _copy_state(model.model)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume is not None:
        start_epoch, best_state, history = _restore(
            Path(resume), config, len(x_train), model, optimizer, scheduler, shuffle, guard
        )
        log.info("resuming from %s at epoch %d", resume, start_epoch + 1)

    collapsed = False
    last_check = {key: history[-1][key] for key in ACCURACY_KEYS} if history else {}
    for epoch in range(start_epoch, config.epochs):
        epoch_started = time.perf_counter()
        order = torch.randperm(len(x_train), generator=shuffle)
        loss_sum, correct, seen, train_seconds = 0.0, 0, 0, 0.0
        for step in range(steps_per_epoch):
            tick = time.perf_counter()
            global_step = epoch * steps_per_epoch + step
            eps = (
                config.eps * min(1.0, (global_step + 1) / warmup_steps)
                if warmup_steps
                else config.eps
            )
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            x, y = x_train[idx].to(model.device), y_train[idx].to(model.device)
            loss, logits = loss_fn(model, x, y, eps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            train_seconds += time.perf_counter() - tick
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(dim=1) == y).sum())
            seen += len(y)
            if config.check_every and (global_step + 1) % config.check_every == 0:
                last_check = _evaluate(model, x_hold, y_hold, config, monitors)
                collapsed = _guard_update(
                    config, guard, global_step + 1, last_check, model, best_state
                )
                if collapsed:
                    break
            if on_step is not None:
                on_step(
                    StepStats(
                        epoch, step, steps_per_epoch, loss_sum / seen, correct / seen, last_check
                    )
                )
        end = (epoch + 1) * steps_per_epoch
        if not collapsed and not (config.check_every and end % config.check_every == 0):
            last_check = _evaluate(model, x_hold, y_hold, config, monitors)
            collapsed = _guard_update(config, guard, end, last_check, model, best_state)
        row = {
            "epoch": epoch + 1,
            "lr": scheduler.get_last_lr()[0],
            "train_eps": eps,
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            **last_check,
            "train_seconds": train_seconds,
            "epoch_seconds": time.perf_counter() - epoch_started,
        }
        history.append(row)
        log.info(
            "epoch %d/%d: loss %.4f, held-out clean %.1f%%, FGSM %.1f%%, PGD %.1f%% (%.0f s)",
            epoch + 1,
            config.epochs,
            row["train_loss"],
            100 * row["clean_accuracy"],
            100 * row["fgsm_accuracy"],
            100 * row["pgd_accuracy"],
            row["epoch_seconds"],
        )
        pd.DataFrame(history).to_csv(paths["metrics"], index=False)
        if collapsed:
            model.model.load_state_dict(best_state)
            log.warning("stopped training; restored the weights of step %d", guard.best_at)
            break
        _save_checkpoint(
            paths["checkpoint"],
            epoch + 1,
            config,
            len(x_train),
            model,
            optimizer,
            scheduler,
            shuffle,
            guard,
            best_state,
            history,
        )

    model.eval()
    final = _evaluate(model, x_hold, y_hold, config, monitors)
    torch.save(model.model.state_dict(), paths["weights"])
    meta = {
        "arch": type(model.model).__name__,
        "dataset": data.name,
        "num_train": len(x_train),
        "classes": data.classes,
        "input_shape": list(model.input_shape or data.input_shape),
        "num_classes": model.num_classes or len(data.classes),
        "mean": _rounded(model.mean),
        "std": _rounded(model.std),
        "config": dataclasses.asdict(config),
        "holdout_accuracy": final,
        "stopped_early": collapsed,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "robustkit": robustkit.__version__,
        **(metadata or {}),
        "sha256": hashlib.sha256(paths["weights"].read_bytes()).hexdigest(),
    }
    paths["metadata"].write_text(json.dumps(meta, indent=2))
    return TrainResult(
        model=model,
        history=history,
        weights=paths["weights"],
        metadata=meta,
        stopped_early=collapsed,
        paths=paths,
    )


def _rounded(values: Tensor | None) -> list[float] | None:
    """Float32 buffer values as the decimals they were given as."""
    return None if values is None else [round(v, 6) for v in values.flatten().tolist()]


def _cyclic(total_steps: int) -> Callable[[int], float]:
    """LR multiplier: 0 -> 1 at 2/5 of the run -> 0 (Wong et al.'s one-cycle schedule)."""
    peak = max(1.0, 0.4 * total_steps)

    def factor(step: int) -> float:
        if step <= peak:
            return step / peak
        return max(0.0, (total_steps - step) / max(1.0, total_steps - peak))

    return factor


def _evaluate(
    model: RobustModel,
    x: Tensor,
    y: Tensor,
    config: TrainConfig,
    monitors: tuple[Attack, Attack],
) -> dict[str, float]:
    """Clean, one-step and PGD accuracy on the held-out images, with a fixed seed."""
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        with torch.no_grad():
            clean = float((model(x).argmax(dim=1) == y).float().mean())
        accuracy = [clean]
        for attack in monitors:
            result = attack(model, x, y, eps=config.eps)
            accuracy.append(float((result.adv_pred == y).float().mean()))
    model.train(was_training)
    return dict(zip(ACCURACY_KEYS, accuracy, strict=True))


def _guard_update(
    config: TrainConfig,
    guard: OverfittingGuard,
    at: int,
    check: dict[str, float],
    model: RobustModel,
    best_state: dict[str, Tensor],
) -> bool:
    """Feed the guard; keep the best weights; True when training must stop. It watches
    pixel-space robustness, which natural and manifold training do not aim for."""
    if not config.guard or config.method in ("natural", "manifold"):
        return False
    collapsed = guard.update(at, check["fgsm_accuracy"], check["pgd_accuracy"])
    if guard.is_best(at):
        best_state.update(_copy_state(model.model))
    return collapsed


def _copy_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _save_checkpoint(
    path: Path,
    epoch: int,
    config: TrainConfig,
    num_train: int,
    model: RobustModel,
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    shuffle: torch.Generator,
    guard: OverfittingGuard,
    best_state: dict[str, Tensor],
    history: list[dict[str, Any]],
) -> None:
    """Write the resume state with plain types and tensors only (weights_only loadable)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "config": dataclasses.asdict(config),
        "num_train": num_train,
        "model": model.model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()},
        "guard": dataclasses.asdict(guard),
        "best_model": best_state,
        "history": history,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _restore(
    path: Path,
    config: TrainConfig,
    num_train: int,
    model: RobustModel,
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    shuffle: torch.Generator,
    guard: OverfittingGuard,
) -> tuple[int, dict[str, Tensor], list[dict[str, Any]]]:
    """Load a checkpoint into the run's objects; return (epoch, best weights, history)."""
    if not path.is_file():
        raise RobustkitError(f"checkpoint {path} not found: give the .ckpt.pt of the run to resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RobustkitError(
            f"cannot read checkpoint {path} ({type(exc).__name__}): {exc}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise RobustkitError(f"{path} is not a robustkit training checkpoint")
    saved = state["config"]
    mismatched = [
        f"{key}={saved[key]!r}" for key in _RESUME_KEYS if saved[key] != getattr(config, key)
    ]
    if state["num_train"] != num_train:
        mismatched.append(f"{state['num_train']} training images")
    if mismatched:
        raise RobustkitError(
            f"checkpoint {path} was made with {', '.join(mismatched)}: resume with the options "
            "and data of the interrupted run"
        )
    try:
        model.model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise RobustkitError(
            f"checkpoint {path} does not fit the model ({str(exc).splitlines()[0]}): resume with "
            "the --model of the interrupted run"
        ) from None
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    shuffle.set_state(state["rng"]["shuffle"])
    for key, value in state["guard"].items():
        setattr(guard, key, value)
    return int(state["epoch"]), state["best_model"], list(state["history"])
