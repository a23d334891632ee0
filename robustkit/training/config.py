"""The hyper-parameters of one training run, checked before any data is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustkit.errors import RobustkitError
from robustkit.training.methods import training_method

# What a resumed run must share with the interrupted one.
RESUME_KEYS = (
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
        method = training_method(self.method)
        method.check(norm=self.norm, steps=self.steps, generator=self.generator)
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

    def mismatches(self, saved: dict[str, Any]) -> list[str]:
        """``key=value`` for each option of a saved run's config that differs from this one."""
        return [f"{key}={saved[key]!r}" for key in RESUME_KEYS if saved[key] != getattr(self, key)]
