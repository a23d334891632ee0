"""A robustness requirement (attack, budget, minimum accuracy), measured by the evaluator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from torch.utils.data import Dataset

from robustkit.attacks import Attack
from robustkit.data import DatasetInfo
from robustkit.errors import RobustkitError
from robustkit.evaluate import audit, build_attack, resolve_data
from robustkit.results import AuditResult

DEFAULT_NUM_SAMPLES = 200
WORST_CLASSES = 3

Data = str | DatasetInfo | Dataset | tuple[Tensor, Tensor]


@dataclass(frozen=True, kw_only=True)
class Requirement:
    """Robust accuracy of at least ``min_accuracy`` under ``attack`` at budget ``eps``.

    ``eps`` is measured in the attack's norm (L-inf, L2, or the noise sigma). Invalid values
    raise RobustkitError at construction, so a bad marker fails at collection.
    """

    eps: float
    min_accuracy: float
    attack: str | Attack = "pgd-linf"
    num_samples: int | None = DEFAULT_NUM_SAMPLES
    steps: int | None = None
    restarts: int | None = None

    def __post_init__(self) -> None:
        if not _is_number(self.eps) or not math.isfinite(self.eps) or self.eps < 0:
            raise RobustkitError(f"eps must be a number >= 0, got {self.eps!r}")
        if not _is_number(self.min_accuracy) or not 0 <= self.min_accuracy <= 1:
            raise RobustkitError(
                f"min_accuracy must be a fraction in [0, 1], got {self.min_accuracy!r} "
                "(write 0.8 for 80%)"
            )
        for name in ("num_samples", "steps", "restarts"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise RobustkitError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.attack, str | Attack):
            raise RobustkitError(
                f"attack must be a registered name such as 'pgd-linf' or an Attack, "
                f"got {self.attack!r}"
            )
        if isinstance(self.attack, Attack) and (self.steps, self.restarts) != (None, None):
            raise RobustkitError(
                "steps and restarts go on the attack object when you pass one, "
                f"e.g. {type(self.attack).__name__}(steps=10)"
            )
        self.build_attack()  # unknown names fail here, with close matches

    @property
    def attack_name(self) -> str:
        return self.attack.name if isinstance(self.attack, Attack) else self.attack

    def build_attack(self) -> Attack:
        """The attack object, with this requirement's steps and restarts."""
        return build_attack(self.attack, steps=self.steps, restarts=self.restarts)


@dataclass(frozen=True)
class Measurement:
    """What the evaluator measured for one requirement."""

    requirement: Requirement
    result: AuditResult

    @property
    def n(self) -> int:
        return len(self.result.frame)

    @property
    def robust(self) -> int:
        return int(self.result.frame["robust_correct"].sum())

    @property
    def accuracy(self) -> float:
        return float(self.result.frame["robust_correct"].mean())

    @property
    def clean_accuracy(self) -> float:
        return float(self.result.frame["clean_correct"].mean())

    @property
    def passed(self) -> bool:
        return self.accuracy >= self.requirement.min_accuracy

    @property
    def attack_config(self) -> dict[str, Any]:
        """The attack's name and every hyper-parameter, as the audit recorded them."""
        return dict(self.result.config["attacks"][0])

    def settings(self) -> dict[str, Any]:
        """What a figure depends on besides the model: compared before a baseline is."""
        config = self.result.config
        return {
            "attack": self.attack_config,
            "eps": self.requirement.eps,
            "n": self.n,
            "dataset": config["dataset"],
            "seed": config["seed"],
        }

    def describe(self) -> list[str]:
        """The lines a reviewer needs: attack parameters, model and data, worst classes."""
        attack = self.attack_config
        name = attack.pop("name")
        params = ", ".join(f"{key}={_format(value)}" for key, value in attack.items())
        config = self.result.config
        lines = [
            f"attack: {name}, {self.result.frame['norm'].iloc[0]} eps={self.requirement.eps:g} "
            f"({params})",
            f"model: {config['model']} on {config['dataset']}, n={self.n}, "
            f"clean accuracy {self.clean_accuracy:.3f}, seed {config['seed']}, "
            f"device {config['device']}",
            "worst classes (robust accuracy, robust / n):",
        ]
        return lines + [f"  {line}" for line in worst_classes(self.result)]


def measure(
    requirement: Requirement,
    model: str | nn.Module,
    data: Data,
    *,
    device: str | None = None,
    seed: int = 0,
) -> Measurement:
    """Run ``robustkit.audit`` with the requirement's one attack and budget."""
    attack = requirement.build_attack()
    num_samples = requirement.num_samples
    if num_samples is not None and not isinstance(data, str):
        # a user's own data: num_samples caps it, however small it is
        data = resolve_data(data, None, seed)
        num_samples = min(num_samples, len(data.dataset))  # type: ignore[arg-type]
    budgets: dict[str, Sequence[float]] = {"linf": (), "l2": (), "gaussian": ()}
    budgets[attack.norm] = [requirement.eps]
    result = audit(
        model,
        data,
        attacks=[attack],
        eps=budgets["linf"],
        eps_l2=budgets["l2"],
        sigmas=budgets["gaussian"],
        num_samples=num_samples,
        device=device,
        seed=seed,
        noise_probes=False,
    )
    if result.frame.empty:
        raise RobustkitError("the dataset is empty: nothing to measure")
    return Measurement(requirement, result)


def worst_classes(result: AuditResult, limit: int = WORST_CLASSES) -> list[str]:
    """One line per class, lowest robust accuracy first."""
    per_class = (
        result.frame.groupby("label")["robust_correct"]
        .agg(["mean", "sum", "size"])
        .sort_values(["mean", "size"], ascending=[True, False], kind="stable")
        .head(limit)
    )
    names: list[str] = result.config.get("classes") or []
    labels = [names[label] if label < len(names) else str(label) for label in per_class.index]
    width = max(len(label) for label in labels)
    return [
        f"{label:<{width}}  {row['mean']:.3f}  ({int(row['sum'])} / {int(row['size'])})"
        for label, (_, row) in zip(labels, per_class.iterrows(), strict=True)
    ]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _format(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
