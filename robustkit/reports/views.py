"""The tables a report shows, computed from an AuditResult with pandas (no rendering here)."""

from __future__ import annotations

import shlex
from typing import Any

import pandas as pd

from robustkit.auditing.checks import DEFENSE_PREFIXES, split_defense
from robustkit.auditing.results import (
    CORRUPTION,
    CORRUPTION_MEAN,
    CORRUPTION_WORST,
    WORST_CASE,
    AuditResult,
    with_passes,
)

SIGMA = "\u03c3"
NORM_LABELS = {
    "linf": "L\u221e eps",
    "l2": "L2 eps",
    "l1": "L1 eps",
    "gaussian": f"noise {SIGMA}",
}


def class_name(config: dict[str, Any], index: int) -> str:
    """The dataset's name for class ``index`` (the index itself when classes are unknown)."""
    classes = config["classes"] or []
    return str(classes[index]) if 0 <= index < len(classes) else str(index)


def budget_label(norm: str, eps: float) -> str:
    """'L-inf eps 0.3', 'noise sigma 0.5' (with the symbols)."""
    return f"{NORM_LABELS.get(norm, norm)} {eps:g}"


def _budget_labels(frame: pd.DataFrame) -> list[str]:
    return [budget_label(n, e) for n, e in zip(frame["norm"], frame["eps"], strict=True)]


def _by_budget(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered L-inf, L2, noise (other norms last), then by eps."""
    rank = {norm: i for i, norm in enumerate(NORM_LABELS)}
    key = frame["norm"].map(lambda norm: rank.get(norm, len(rank))) * 1e6 + frame["eps"]
    return frame.assign(_key=key).sort_values("_key", kind="stable").drop(columns="_key")


def clean_accuracy(result: AuditResult) -> float:
    """Share of the audited samples the model classifies correctly (a randomized model: the mean
    share of its passes that do)."""
    samples = with_passes(result.frame.drop_duplicates(["model", "sample"]))
    return float((samples["clean_passes"] / samples["passes"]).mean())


def headline(result: AuditResult) -> dict[str, dict[str, float]]:
    """The worst-case robust accuracy and its 95% interval per budget label (norm and eps): the
    numbers that count."""
    summary = result.summary()
    worst = _by_budget(summary[summary["attack"] == WORST_CASE])
    columns = ["robust_accuracy", "ci_low", "ci_high", "passes", "robust_all_passes"]
    values = worst[[*columns, "robust_majority"]].to_dict("records")
    return dict(zip(_budget_labels(worst), values, strict=True))


def radius_curves(result: AuditResult) -> pd.DataFrame:
    """Per minimum-norm attack and norm, each clean-correct sample's robustness radius (0 for a
    misclassified one): the robust accuracy at any eps is the share with a radius above it."""
    rows = result.frame[result.frame["radius"].notna()]
    if rows.empty:
        return rows[["model", "attack", "norm", "radius"]]
    per_sample = rows.drop_duplicates(["model", "attack", "norm", "sample"])
    radius = per_sample["radius"].where(per_sample["clean_correct"].astype(bool), 0.0)
    return per_sample.assign(radius=radius)[["model", "attack", "norm", "radius"]]


def accuracy_table(result: AuditResult) -> pd.DataFrame:
    """Robust accuracy with its 95% interval, one row per attack (worst case last) and one
    column per budget, as display strings."""
    summary = _by_budget(result.summary())
    summary = summary.assign(
        budget=_budget_labels(summary),
        cell=[
            f"{acc:.1%} ({low:.1%}\u2013{high:.1%})"
            for acc, low, high in zip(
                summary["robust_accuracy"], summary["ci_low"], summary["ci_high"], strict=True
            )
        ],
    )
    table = summary.pivot_table(
        index="attack", columns="budget", values="cell", aggfunc="first", sort=False
    )
    order = [a for a in summary["attack"].unique() if a != WORST_CASE] + [WORST_CASE]
    return table.reindex(order).fillna("-")


def per_class_accuracy(result: AuditResult) -> pd.DataFrame:
    """Worst-case robust accuracy per true class (rows, by name) and budget (columns)."""
    worst = _by_budget(result.worst_case().sort_values("label", kind="stable"))
    worst = worst.assign(
        budget=_budget_labels(worst),
        cls=[class_name(result.config, int(label)) for label in worst.label],
    )
    return worst.pivot_table(
        index="cls", columns="budget", values="robust_correct", aggfunc="mean", sort=False
    )


def confused_pairs(result: AuditResult, top: int = 10) -> list[dict[str, Any]]:
    """The most frequent (true class -> adversarial class) changes over all attacks and eps."""
    rows = result.frame
    broken = rows[rows["clean_correct"] & ~rows["robust_correct"].astype(bool)]
    if broken.empty:
        return []
    counts = broken.groupby(["label", "adv_pred"]).size().sort_values(ascending=False)
    return [
        {
            "true": class_name(result.config, int(label)),
            "adversarial": class_name(result.config, int(pred)),
            "count": int(count),
            "share": count / len(broken),
        }
        for (label, pred), count in counts.head(top).items()
    ]


def noise_success(result: AuditResult) -> list[dict[str, Any]]:
    """PGD-from-noise rows with class names."""
    if result.noise_targets is None:
        return []
    return [
        {
            "target": class_name(result.config, int(row.target)),
            "eps": row.eps,
            "success_rate": row.success_rate,
            "confidence": row.target_confidence,
        }
        for row in result.noise_targets.itertuples()
    ]


def defense_table(result: AuditResult) -> pd.DataFrame | None:
    """Oblivious vs BPDA vs BPDA+EOT (vs latent-space) robust accuracy side by side, with the
    per-sample worst case over them ('counts'); None when no attack carries a defense prefix."""
    rows = result.frame
    split = [split_defense(name) for name in rows["attack"]]
    rows = rows.assign(threat=[p for p, _ in split], base=[b for _, b in split])
    rows = rows[rows["threat"].notna()]
    if rows.empty:
        return None
    keys = ["base", "norm", "eps"]
    table = rows.pivot_table(
        index=keys, columns="threat", values="robust_correct", aggfunc="mean", sort=False
    )
    table = table[[p for p in DEFENSE_PREFIXES if p in table.columns]]
    table["counts"] = rows.groupby([*keys, "sample"])["robust_correct"].all().groupby(keys).mean()
    return table.reset_index()


def corruption_table(result: AuditResult) -> pd.DataFrame | None:
    """Accuracy per corruption (rows) and severity (columns), with each corruption's mean and,
    last, the mean over every cell (RobustBench's corruption accuracy); None without corruptions.
    """
    summary = result.summary()
    rows = summary[summary["norm"] == CORRUPTION]
    if rows.empty:
        return None
    cells = rows[~rows["attack"].isin([CORRUPTION_MEAN, CORRUPTION_WORST])]
    table = cells.pivot_table(
        index="corruption", columns="severity", values="robust_accuracy", sort=False
    )
    table.columns = [f"severity {int(s)}" for s in table.columns]
    table["mean"] = table.mean(axis=1)
    table.loc["all corruptions"] = table.mean(axis=0)
    table.index.name = "corruption"
    return table.map(lambda value: f"{value:.1%}")


def corruption_headline(result: AuditResult) -> dict[str, Any] | None:
    """The corruption accuracy (mean over corruptions and severities) and the worst cell."""
    summary = result.summary()
    mean = summary[summary["attack"] == CORRUPTION_MEAN]
    worst = summary[summary["attack"] == CORRUPTION_WORST]
    if mean.empty:
        return None
    return {
        "mean": float(mean["robust_accuracy"].iloc[0]),
        "worst": f"{worst['corruption'].iloc[0]} severity {int(worst['severity'].iloc[0])}",
        "worst_accuracy": float(worst["robust_accuracy"].iloc[0]),
        "cells": int((summary["norm"] == CORRUPTION).sum() - 2),
    }


def sigma_sweep(result: AuditResult) -> pd.DataFrame:
    """Robust accuracy of the Gaussian-noise attack per sigma."""
    summary = result.summary()
    return summary[(summary["norm"] == "gaussian") & (summary["attack"] != WORST_CASE)]


def reproduce_command(config: dict[str, Any]) -> tuple[str, bool]:
    """The command that reproduces the audit, and whether it was recorded (else reconstructed
    from run.json: it then misses options run.json does not keep, such as --checkpoint)."""
    if config["command"]:
        return str(config["command"]), True
    args = ["robustkit", "audit", "--model", str(config["model"])]
    args += ["--dataset", str(config["dataset"])]
    attacks = config["attacks"]
    if attacks:
        args += ["--attacks", ",".join(str(a["name"]) for a in attacks)]
    budgets = config["budgets"]
    for option, norm in (
        ("--eps", "linf"),
        ("--eps-l2", "l2"),
        ("--eps-l1", "l1"),
        ("--sigmas", "gaussian"),
    ):
        if budgets.get(norm):
            args += [option, ",".join(f"{v:g}" for v in budgets[norm])]
    steps = {a["steps"] for a in attacks if "steps" in a and a["name"] != "fgsm"}
    if len(steps) == 1:
        args += ["--steps", str(steps.pop())]
    for option, key in (("--num-samples", "num_samples"), ("--seed", "seed")):
        args += [option, str(config[key])]
    return shlex.join(args), False
