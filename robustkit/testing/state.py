"""The plugin's session state: parsed options and the checks run so far (light imports only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustkit.auditing.spec import DEFAULTS
from robustkit.testing import wording
from robustkit.testing.baseline import Baseline


@dataclass(frozen=True)
class CheckRecord:
    """One check's figures: plain values, so xdist workers can send it to the controller."""

    test: str  # the baseline key: test node id, attack or suite, and eps
    attack: str  # 'fgsm', 'suite=quick', 'fgsm suite=quick'
    suite: str | None
    evaluation: bool  # False for a smoke-check suite
    norm: str
    eps: float
    n: int
    accuracy: float  # the worst case over every attack run
    ci_low: float  # its 95% Clopper-Pearson interval
    ci_high: float
    clean_accuracy: float
    required: float
    meets_accuracy: bool
    passed: bool  # meets_accuracy, and no sanity-check error outside allow_flags
    flags: list[dict[str, Any]]  # code, severity, message, blocking, allowed
    folder: str  # the saved AuditResult
    settings: dict[str, Any]

    def status(self) -> str:
        """'ok', or why the check failed: 'below', 'untrusted' or both."""
        reasons = [] if self.meets_accuracy else ["below"]
        if any(flag["blocking"] for flag in self.flags):
            reasons.append("untrusted")
        return ", ".join(reasons) or "ok"

    def summary_lines(self) -> list[str]:
        """The check's line in the terminal summary, then one line per sanity flag."""
        figures = wording.headline(
            self.accuracy,
            self.ci_low,
            self.ci_high,
            required=self.required,
            n=self.n,
            suite=self.suite,
            evaluation=self.evaluation,
        )
        return [f"{self.status()}: {self.test}: {figures}"] + [
            f"    {wording.flag_line(flag, allowed=flag['allowed'])}" for flag in self.flags
        ]


@dataclass
class SessionState:
    """The parsed options and everything checked so far (kept in ``config.stash``)."""

    device: str | None = None
    samples: int | None = None
    seed: int = DEFAULTS.seed
    report_dir: Path | None = None
    baseline: Baseline | None = None
    update_baseline: bool = False
    tolerance: float = 0.02
    records: list[CheckRecord] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)  # by the controller, at the end
