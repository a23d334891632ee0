"""The plugin's session state: parsed options and the checks run so far (light imports only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustkit.testing.baseline import Baseline


@dataclass(frozen=True)
class CheckRecord:
    """One check's figures: plain values, so xdist workers can send it to the controller."""

    test: str  # the baseline key: test node id, attack and eps
    attack: str
    norm: str
    eps: float
    n: int
    accuracy: float
    clean_accuracy: float
    required: float
    passed: bool
    folder: str  # the saved AuditResult
    settings: dict[str, Any]


@dataclass
class SessionState:
    """The parsed options and everything checked so far (kept in ``config.stash``)."""

    device: str | None = None
    samples: int | None = None
    seed: int = 0
    report_dir: Path | None = None
    baseline: Baseline | None = None
    update_baseline: bool = False
    tolerance: float = 0.02
    records: list[CheckRecord] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)  # by the controller, at the end
