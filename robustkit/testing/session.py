"""One pytest session's robustness checks: run them, record them, merge them into a report."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
from torch import nn

from robustkit.auditing.results import ROW_COLUMNS, AuditResult, ensure_writable_dir
from robustkit.data.datasets import SAMPLE_NAME
from robustkit.errors import RobustkitError
from robustkit.testing.requirement import AttackSpec, Data, Measurement, Requirement, measure
from robustkit.testing.state import CheckRecord, SessionState

CHECK_COLUMNS = [
    "test",
    "attack",
    "suite",
    "evaluation",
    "norm",
    "eps",
    "n",
    "accuracy",
    "ci_low",
    "ci_high",
    "required",
    "meets_accuracy",
    "passed",
    "flags",
    "folder",
]


class Checker:
    """The ``robustkit_check`` callable of one test: measure, record, fail with the figures."""

    def __init__(self, state: SessionState, item: pytest.Item, out_root: Path) -> None:
        self.state = state
        self.item = item
        self.out_root = out_root
        self._keys: Counter[str] = Counter()

    def __call__(
        self,
        model: str | nn.Module,
        data: Data = SAMPLE_NAME,
        *,
        eps: float,
        min_accuracy: float,
        attack: AttackSpec | Sequence[AttackSpec] | None = None,
        suite: str | None = None,
        norm: str | None = None,
        num_samples: int | None = None,
        steps: int | None = None,
        restarts: int | None = None,
        allow_flags: Sequence[str] = (),
    ) -> Measurement:
        """Fail the test unless ``model`` keeps ``min_accuracy`` at ``eps`` under ``attack``
        (default ``pgd-linf``; several of one norm: the worst case over them), under the attacks
        of ``suite``, or under both (the worst case counts), or when a sanity check says the
        figure cannot be trusted (bar the check codes in ``allow_flags``). ``num_samples``,
        ``steps`` and ``restarts`` left at None take the audit's defaults."""
        requirement = Requirement(
            attack=attack,
            suite=suite,
            norm=norm,
            eps=eps,
            min_accuracy=min_accuracy,
            num_samples=num_samples,
            steps=steps,
            restarts=restarts,
            allow_flags=allow_flags,
        )
        return self.check(requirement, model, data)

    def check(self, requirement: Requirement, model: object, data: Data) -> Measurement:
        """Measure ``requirement`` on ``model``; pytest.fail with a reviewer's message if unmet."""
        if not isinstance(model, str | nn.Module):
            raise RobustkitError(
                "a robustness check needs the model: an nn.Module, a RobustModel or a spec "
                f"such as 'zoo:mnist-cnn', got {type(model).__name__}"
            )
        if self.state.samples is not None:
            requirement = dataclasses.replace(requirement, num_samples=self.state.samples)
        measurement = measure(
            requirement, model, data, device=self.state.device, seed=self.state.seed
        )
        key = self._key(requirement)
        measurement.result.config["test"] = key
        folder = measurement.result.save(self.out_root / folder_name(key)).resolve()
        self._record(key, measurement, folder)
        problems = measurement.problems() + self._regression(key, measurement)
        if problems:
            details = [*measurement.describe(), f"adversarial examples and results: {folder}"]
            lines = [measurement.headline(), *problems, *(f"  {line}" for line in details)]
            pytest.fail("\n".join(lines), pytrace=False)
        return measurement

    def _key(self, requirement: Requirement) -> str:
        key = f"{self.item.nodeid} {requirement.label} eps={requirement.eps:g}"
        self._keys[key] += 1
        return key if self._keys[key] == 1 else f"{key} #{self._keys[key]}"

    def _record(self, key: str, measurement: Measurement, folder: Path) -> None:
        requirement = measurement.requirement
        record = CheckRecord(
            test=key,
            attack=requirement.label,
            suite=requirement.suite,
            evaluation=measurement.evaluation,
            norm=requirement.threat_norm,
            eps=requirement.eps,
            n=measurement.n,
            accuracy=measurement.accuracy,
            ci_low=measurement.ci_low,
            ci_high=measurement.ci_high,
            clean_accuracy=measurement.clean_accuracy,
            required=requirement.min_accuracy,
            meets_accuracy=measurement.meets_accuracy,
            passed=measurement.passed,
            flags=measurement.flag_records(),
            folder=str(folder),
            settings=measurement.settings(),
        )
        self.state.records.append(record)
        self.item.user_properties += [
            ("robustkit_accuracy", round(record.accuracy, 4)),
            ("robustkit_ci_low", round(record.ci_low, 4)),
            ("robustkit_ci_high", round(record.ci_high, 4)),
            ("robustkit_required", record.required),
            ("robustkit_n", record.n),
            ("robustkit_attack", record.attack),
            ("robustkit_eps", record.eps),
        ]
        if record.flags:
            codes = ", ".join(f"{flag['code']} ({flag['severity']})" for flag in record.flags)
            self.item.user_properties.append(("robustkit_flags", codes))

    def _regression(self, key: str, measurement: Measurement) -> list[str]:
        baseline = self.state.baseline
        if baseline is None or self.state.update_baseline:
            return []
        mismatch = baseline.mismatch(key, measurement.settings())
        if mismatch is not None:
            warnings.warn(pytest.PytestWarning(mismatch), stacklevel=2)
            return []
        regression = baseline.regression(
            key,
            measurement.accuracy,
            self.state.tolerance,
            ci=(measurement.ci_low, measurement.ci_high),
        )
        return [] if regression is None else [regression]


def folder_name(key: str) -> str:
    """A file-system-safe, unique folder name for a check key."""
    safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", key).strip("_")[:80]
    return f"{safe}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def write_session_report(records: Sequence[CheckRecord], out_dir: Path) -> list[Path]:
    """Write results.csv (every sample of every check), checks.csv and report.html."""
    out = ensure_writable_dir(out_dir)
    records = sorted(records, key=lambda record: record.test)
    results = [AuditResult.load(record.folder) for record in records]
    frames = [
        result.frame.assign(test=record.test)
        for record, result in zip(records, results, strict=True)
    ]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_COLUMNS)
    rows.reindex(columns=["test", *ROW_COLUMNS]).to_csv(out / "results.csv", index=False)
    checks = pd.DataFrame([dataclasses.asdict(r) for r in records], columns=CHECK_COLUMNS)
    checks["flags"] = [
        "; ".join(f"{flag['severity']} {flag['code']}" for flag in record.flags)
        for record in records
    ]
    checks.to_csv(out / "checks.csv", index=False)
    written = [out / "results.csv", out / "checks.csv"]
    if results:
        from robustkit.reports import write_report  # lazy: jinja2 and matplotlib

        written.append(write_report(results, out / "report.html"))
    return written
