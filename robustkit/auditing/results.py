"""AuditResult: the tidy per-sample frame of an audit and its summary views."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from robustkit.auditing.perturbations import load_perturbations, save_perturbations
from robustkit.auditing.spec import check_run_record
from robustkit.auditing.stats import clopper_pearson
from robustkit.errors import RobustkitError
from robustkit.files import torch_bytes, write_bytes, write_text

WORST_CASE = "worst-case"
CORRUPTION = "corruption"  # the norm of common-corruption rows (eps is the severity)
CORRUPTION_MEAN = "corruption-mean"  # RobustBench's corruption accuracy: mean over the cells
CORRUPTION_WORST = "corruption-worst"  # the corruption x severity of lowest accuracy
# What became of a row's sample: misclassified clean, robust, broken, or error (its batch failed
# and --skip-bad recorded it: counted in n, never as robust)
MISCLASSIFIED, ROBUST, BROKEN, ERROR = "misclassified", "robust", "broken", "error"
NAN = float("nan")
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
    "outcome",  # misclassified, robust, broken or error
    "broken_by",  # the attack that broke the sample first ("" while it holds)
    "perturbation",  # size of that adversarial's perturbation in the row's norm
    "radius",  # minimum-norm attacks: the smallest adversarial's norm (inf: none found)
    "corruption",  # corruption rows: the corruption's name ("" on attack rows)
    "severity",  # corruption rows: the severity 1-5, also in eps (NaN on attack rows)
    # Passes that judge a point: 1 for a deterministic model; a randomized model's rows count
    # correct ones (clean_correct and robust_correct are then majority votes).
    "passes",
    "clean_passes",  # of the passes, those classifying the input correctly
    "correct_passes",  # ... the kept adversarial, scored afresh after every choice (reported)
    "chosen_passes",  # ... the kept adversarial when it was chosen (the choices rest on these)
    # Query-based attacks: model queries the breaking attack spent on the sample up to its first
    # success (unbroken: all the row's attack spent on it); empty where no query was counted.
    # Worst-case rows: the fewest any attack broke the sample with (unbroken: the most spent).
    "queries",
]
SUMMARY_COLUMNS = [
    "model",
    "attack",
    "norm",
    "eps",
    "n",
    "errors",  # of the n, images whose batch failed (--skip-bad): never robust
    "clean_accuracy",
    "robust_accuracy",
    "ci_low",
    "ci_high",
    "passes",
    "robust_all_passes",
    "robust_majority",
    "corruption",
    "severity",
]
# How a randomized model's accuracy is counted, for the terminal and the report.
PASSES_RULE = (
    "robust accuracy of a randomized model is its expected accuracy: the mean over points of the "
    "share of {passes} fresh passes classifying the adversarial correctly (clean accuracy "
    "likewise); 'all passes' counts points correct on every pass, 'majority' those correct on "
    "more than half"
)
EXAMPLE_COLUMNS = [
    "attack",
    "eps",
    "sample",
    "label",
    "clean_pred",
    "adv_pred",
    "clean_confidence",
    "adv_confidence",
]


@dataclass
class Examples:
    """A few successful adversarials per attack and eps: images plus one metadata row each."""

    clean: Tensor  # (K, C, H, W) in [0, 1]
    adversarial: Tensor  # (K, C, H, W) in [0, 1]
    frame: pd.DataFrame  # EXAMPLE_COLUMNS, row k describes image k


@dataclass
class AuditResult:
    """One row per sample x model x attack x eps, plus the run's configuration.

    Optional extras: example adversarials and the pure-noise probes of the model.
    """

    frame: pd.DataFrame
    config: dict[str, Any] = field(default_factory=dict)
    examples: Examples | None = None
    noise_grid: pd.DataFrame | None = None
    noise_targets: pd.DataFrame | None = None
    # randomized models: the kept adversarial of every sample, per adversarial_key of a row
    adversarials: dict[str, Tensor] | None = None
    # universal perturbations (C, H, W) by file stem (universal-<norm>-<eps>); run.json's
    # "universal" describes them
    universal: dict[str, Tensor] | None = None

    def worst_case(self) -> pd.DataFrame:
        """Per sample, robust only if it survived every attack of the same norm and eps."""
        keys = ["model", "norm", "eps", "sample"]
        attacks = self.frame[self.frame["norm"] != CORRUPTION]  # corruptions are no adversary
        # Broken rows first, so each sample's first row is a successful attack when there is one;
        # a randomized model's, the adversarial chosen with the fewest correct passes (its
        # reported score comes from other, fresh passes, so the choice does not flatter it).
        broken_first = with_passes(attacks).sort_values("chosen_passes", kind="stable")
        worst = broken_first.groupby(keys, sort=False).first().reset_index()
        worst = worst.sort_values(keys, kind="stable", ignore_index=True)
        worst["attack"] = WORST_CASE
        worst["queries"] = _worst_queries(attacks, worst, keys)
        return worst[ROW_COLUMNS]

    def with_worst_case(self) -> pd.DataFrame:
        """The tidy frame with the worst-case rows appended."""
        return pd.concat([self.frame, self.worst_case()], ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Clean and robust accuracy per model, attack, norm and eps (worst case included), with
        the robust accuracy's 95% Clopper-Pearson interval; with corruptions, one row per
        corruption x severity plus their mean (no interval) and their worst cell per model."""
        rows = with_passes(self.with_worst_case())
        rows = rows.assign(
            clean_share=rows["clean_passes"] / rows["passes"],
            robust_share=rows["correct_passes"] / rows["passes"],
            all_passes=rows["correct_passes"] == rows["passes"],
            error=rows["outcome"] == ERROR if "outcome" in rows else False,
        )
        summary = (
            rows.groupby(["model", "attack", "norm", "eps"], sort=False)
            .agg(
                n=("sample", "size"),
                errors=("error", "sum"),
                clean_accuracy=("clean_share", "mean"),
                robust_accuracy=("robust_share", "mean"),
                passes=("passes", "max"),
                robust_all_passes=("all_passes", "mean"),
                robust_majority=("robust_correct", "mean"),
            )
            .reset_index()
        )
        robust = (summary["robust_accuracy"] * summary["n"]).round()
        summary["ci_low"], summary["ci_high"] = clopper_pearson(robust, summary["n"])
        cells = summary["norm"] == CORRUPTION
        summary["corruption"] = summary["attack"].where(cells, "")
        summary["severity"] = summary["eps"].where(cells)
        if cells.any():
            summary = pd.concat([summary, _corruption_rows(summary[cells])], ignore_index=True)
        return summary[SUMMARY_COLUMNS]

    def without_corruptions(self) -> AuditResult:
        """The same result with the attack rows only (for the views of adversarial budgets)."""
        frame = self.frame[self.frame["norm"] != CORRUPTION].reset_index(drop=True)
        return dataclasses.replace(self, frame=frame)

    def robust_accuracy(self, attack: str = WORST_CASE) -> pd.Series:
        """Robust accuracy of one attack (default: the worst case), indexed by (norm, eps)."""
        summary = self.summary()
        return summary[summary["attack"] == attack].set_index(["norm", "eps"])["robust_accuracy"]

    def save(self, out_dir: str | Path) -> Path:
        """Write results.csv, summary.csv, run.json and the extras present (universal
        perturbations: ``universal-<norm>-<eps>.pt`` and ``.png``) into ``out_dir``, each
        atomically (:mod:`robustkit.files`)."""
        out = ensure_writable_dir(out_dir)
        write_text(out / "results.csv", self.with_worst_case().to_csv(index=False))
        write_text(out / "summary.csv", self.summary().to_csv(index=False))
        write_text(out / "run.json", json.dumps(self.config, indent=2, default=str))
        if self.examples is not None:
            images = {"clean": self.examples.clean, "adversarial": self.examples.adversarial}
            write_bytes(out / "examples.pt", torch_bytes(images))
            write_text(out / "examples.csv", self.examples.frame.to_csv(index=False))
        if self.adversarials is not None:
            write_bytes(out / "adversarials.pt", torch_bytes(self.adversarials))
        if self.noise_grid is not None:
            write_text(out / "noise_grid.csv", self.noise_grid.to_csv(index=False))
        if self.noise_targets is not None:
            write_text(out / "noise_targets.csv", self.noise_targets.to_csv(index=False))
        if self.universal:
            save_perturbations(out, self.universal)
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> AuditResult:
        """Read back a folder written by :meth:`save` (tensors with ``weights_only=True``); a
        run.json of another schema is refused in one line."""
        folder = Path(out_dir)
        results, run = folder / "results.csv", folder / "run.json"
        if not results.is_file() or not run.is_file():
            raise RobustkitError(
                f"{folder} holds no audit results (results.csv, run.json): "
                "point at a folder written by `robustkit audit --out`"
            )
        rows = _read_rows(results)
        examples = None
        if (folder / "examples.pt").is_file() and (folder / "examples.csv").is_file():
            images = torch.load(folder / "examples.pt", map_location="cpu", weights_only=True)
            examples = Examples(
                clean=images["clean"],
                adversarial=images["adversarial"],
                frame=pd.read_csv(folder / "examples.csv"),
            )
        config = _read_config(run)
        return cls(
            frame=rows[rows["attack"] != WORST_CASE].reset_index(drop=True),
            config=config,
            examples=examples,
            noise_grid=_read_optional(folder / "noise_grid.csv"),
            noise_targets=_read_optional(folder / "noise_targets.csv"),
            universal=load_perturbations(folder, config),
        )


def _worst_queries(rows: pd.DataFrame, worst: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Per worst-case row: the fewest queries an attack broke its sample with, or, where the
    sample held, the most an attack spent on it (NaN where no row counted queries)."""
    queries = rows["queries"] if "queries" in rows else pd.Series(NAN, index=rows.index)
    broken = rows["broken_by"].astype(str) != ""
    counts = rows.assign(fewest=queries.where(broken), most=queries).groupby(keys, sort=False)
    per_sample = counts.agg(fewest=("fewest", "min"), most=("most", "max"))
    found = per_sample.reindex(pd.MultiIndex.from_frame(worst[keys]))
    held = worst["broken_by"].astype(str).to_numpy() == ""
    return pd.Series(found["most"].where(held, found["fewest"]).to_numpy(), index=worst.index)


def _corruption_rows(cells: pd.DataFrame) -> pd.DataFrame:
    """Per model, the mean over corruption x severity cells (RobustBench's corruption accuracy)
    and the worst cell."""
    rows = []
    for _model, group in cells.groupby("model", sort=False):
        mean = group.iloc[0].copy()
        mean["attack"], mean["eps"], mean["corruption"], mean["severity"] = (
            CORRUPTION_MEAN,
            NAN,
            "all",
            NAN,
        )
        mean["robust_accuracy"] = group["robust_accuracy"].mean()
        mean["clean_accuracy"] = group["clean_accuracy"].mean()
        mean["ci_low"] = mean["ci_high"] = NAN  # the cells share their images: no simple interval
        mean["errors"] = group["errors"].max()
        mean["robust_all_passes"] = group["robust_all_passes"].mean()
        mean["robust_majority"] = group["robust_majority"].mean()
        worst = group.loc[group["robust_accuracy"].idxmin()].copy()
        worst["attack"] = CORRUPTION_WORST
        rows += [mean, worst]
    return pd.DataFrame(rows, columns=cells.columns)


def outcomes(rows: pd.DataFrame) -> pd.Series:
    """Each row's outcome from its correctness: misclassified (clean), robust or broken; rows
    already marked ``error`` stay so."""
    derived = np.select(
        [~rows["clean_correct"].astype(bool), rows["robust_correct"].astype(bool)],
        [MISCLASSIFIED, ROBUST],
        BROKEN,
    )
    if "outcome" not in rows:
        return pd.Series(derived, index=rows.index)
    return rows["outcome"].where(rows["outcome"] == ERROR, derived)


def adversarial_key(model: str, attack: str, norm: str, eps: float) -> str:
    """The name under which adversarials.pt holds the adversarials of one row group."""
    return f"{model}|{attack}|{norm}|{eps:g}"


def with_passes(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with the pass counts, one pass each where absent (rows written before they existed,
    or built without them)."""
    correct = rows["robust_correct"].astype(int)
    defaults = {
        "passes": 1,
        "clean_passes": rows["clean_correct"].astype(int),
        "correct_passes": correct,
        "chosen_passes": correct,
    }
    filled = {
        column: rows[column].fillna(default) if column in rows else default
        for column, default in defaults.items()
    }
    return rows.assign(**filled)


def is_randomized_run(config: dict[str, Any]) -> bool:
    """Whether run.json records an audit that judged points over several passes."""
    return int(config.get("protocol", {}).get("eval_passes", 1)) > 1


def _corrupt(path: Path, detail: str) -> RobustkitError:
    return RobustkitError(
        f"{path} is corrupt ({detail}): re-run `robustkit audit --out {path.parent}`"
    )


def _read_rows(path: Path) -> pd.DataFrame:
    """results.csv, checked to hold the tidy rows; older files get the later columns."""
    try:
        rows = pd.read_csv(path, dtype={"broken_by": str, "corruption": str}).fillna(
            {"broken_by": "", "corruption": ""}
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise _corrupt(path, str(err).splitlines()[0]) from None
    later = (("broken_by", ""), ("perturbation", NAN), ("radius", NAN), ("corruption", ""))
    for column, missing in (*later, ("severity", NAN), ("queries", NAN)):
        if column not in rows:  # written before these columns existed
            rows[column] = missing
    derived = ("outcome", "passes", "clean_passes", "correct_passes", "chosen_passes")
    absent = [column for column in ROW_COLUMNS if column not in rows and column not in derived]
    if absent:
        raise _corrupt(path, f"no column {', '.join(absent)}")
    if "outcome" not in rows:  # written before outcomes were recorded
        rows["outcome"] = outcomes(rows)
    return with_passes(rows)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _corrupt(path, f"not JSON: {err}") from None
    if not isinstance(config, dict):
        raise _corrupt(path, "not a JSON object")
    check_run_record(config, path)
    return config


def _read_optional(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and check that files can be written into it."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".robustkit-write-test-{os.getpid()}"  # processes may share ``out``
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise RobustkitError(
            f"cannot write to output folder {out} ({err.strerror}): choose another --out"
        ) from None
    return out
