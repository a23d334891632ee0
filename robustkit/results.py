"""AuditResult: the tidy per-sample frame of an audit and its summary views."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from robustkit.errors import RobustkitError

WORST_CASE = "worst-case"
ROW_COLUMNS = [
    "model",
    "attack",
    "norm",
    "eps",
    "sample",
    "label",
    "clean_pred",
    "adv_pred",
    "clean_correct",
    "robust_correct",
]
SUMMARY_COLUMNS = ["model", "attack", "norm", "eps", "n", "clean_accuracy", "robust_accuracy"]


@dataclass
class AuditResult:
    """One row per sample x model x attack x eps, plus the run's configuration."""

    frame: pd.DataFrame
    config: dict[str, Any] = field(default_factory=dict)

    def worst_case(self) -> pd.DataFrame:
        """Per sample, robust only if it survived every attack of the same norm and eps."""
        keys = ["model", "norm", "eps", "sample"]
        # Broken rows first, so each sample's first row is a successful attack when there is one.
        broken_first = self.frame.sort_values("robust_correct", kind="stable")
        worst = broken_first.groupby(keys, sort=False).first().reset_index()
        worst = worst.sort_values(keys, kind="stable", ignore_index=True)
        worst["attack"] = WORST_CASE
        return worst[ROW_COLUMNS]

    def with_worst_case(self) -> pd.DataFrame:
        """The tidy frame with the worst-case rows appended."""
        return pd.concat([self.frame, self.worst_case()], ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Clean and robust accuracy per model, attack, norm and eps (worst case included)."""
        rows = self.with_worst_case()
        summary = (
            rows.groupby(["model", "attack", "norm", "eps"], sort=False)
            .agg(
                n=("sample", "size"),
                clean_accuracy=("clean_correct", "mean"),
                robust_accuracy=("robust_correct", "mean"),
            )
            .reset_index()
        )
        return summary[SUMMARY_COLUMNS]

    def robust_accuracy(self, attack: str = WORST_CASE) -> pd.Series:
        """Robust accuracy of one attack (default: the worst case), indexed by (norm, eps)."""
        summary = self.summary()
        return summary[summary["attack"] == attack].set_index(["norm", "eps"])["robust_accuracy"]

    def save(self, out_dir: str | Path) -> Path:
        """Write results.csv, summary.csv and run.json into ``out_dir``."""
        out = ensure_writable_dir(out_dir)
        self.with_worst_case().to_csv(out / "results.csv", index=False)
        self.summary().to_csv(out / "summary.csv", index=False)
        (out / "run.json").write_text(json.dumps(self.config, indent=2, default=str))
        return out


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and check that files can be written into it."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".robustkit-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise RobustkitError(
            f"cannot write to output folder {out} ({err.strerror}): choose another --out"
        ) from None
    return out
