"""Our audit of a RobustBench zoo model beside the leaderboard's published figures.

:func:`compare` writes the record run.json keeps under ``leaderboard``: the leaderboard's clean
and AutoAttack (or corruption) accuracy and eps, ours with their 95% Clopper-Pearson intervals,
and the gap (ours minus the leaderboard's) at the leaderboard's eps when the audit ran it. Two
verdicts feed the checks (:mod:`robustkit.auditing.checks`): the leaderboard's robust accuracy
below our interval (our attacks are weaker than its AutoAttack), and its clean accuracy outside
ours (other weights, data or preprocessing).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from robustkit.auditing.results import CORRUPTION_MEAN, WORST_CASE, AuditResult
from robustkit.auditing.stats import clopper_pearson

NORMS = {"Linf": ("linf", "--eps"), "L2": ("l2", "--eps-l2")}
EPS_TOLERANCE = 1e-4  # relative: 0.0313725 is the leaderboard's 8/255


def compare(result: AuditResult, entry: dict[str, Any]) -> dict[str, Any]:
    """The record of ``result`` beside the leaderboard ``entry`` (models.leaderboard)."""
    if not entry.get("found"):
        return dict(entry)
    summary = result.summary()
    mine = summary[summary["model"] == result.config.get("model")]
    summary = mine if not mine.empty else summary
    ours: dict[str, Any] = {}
    if not summary.empty:
        first = summary.iloc[0]
        n = int(first["n"])
        low, high = _interval(round(float(first["clean_accuracy"]) * n), n)
        ours = {"n": n, "clean_accuracy": float(first["clean_accuracy"])}
        ours |= {"clean_ci_low": low, "clean_ci_high": high}
    row = _matching_row(summary, entry)
    if row is not None:
        ours |= {
            "norm": row["norm"],
            "eps": None if _missing(row["eps"]) else float(row["eps"]),
            "robust_accuracy": float(row["robust_accuracy"]),
            "ci_low": None if _missing(row["ci_low"]) else float(row["ci_low"]),
            "ci_high": None if _missing(row["ci_high"]) else float(row["ci_high"]),
        }
    record = {**entry, "ours": ours, "audited": row is not None}
    board, board_clean = entry.get("robust_accuracy"), entry["clean_accuracy"]
    record["clean_gap"] = _minus(ours.get("clean_accuracy"), board_clean)
    record["gap"] = _minus(ours.get("robust_accuracy"), board)
    record["gap_ci_low"] = _minus(ours.get("ci_low"), board)
    record["gap_ci_high"] = _minus(ours.get("ci_high"), board)
    record["robust_above_leaderboard"] = bool(
        board is not None and ours.get("ci_low") is not None and board < ours["ci_low"]
    )
    record["clean_off_leaderboard"] = bool(
        ours and not ours["clean_ci_low"] <= board_clean <= ours["clean_ci_high"]
    )
    return record


def leaderboard_lines(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) lines for the terminal and the report: the leaderboard's figures, then ours
    and the gap."""
    where = f"{record['dataset']} {record['threat']} {record['name']}"
    if not record.get("found"):
        return [("leaderboard", f"RobustBench has no leaderboard entry for {where}")]
    board = f"RobustBench, {where}"
    if record.get("architecture"):
        board += f" ({record['architecture']})"
    board += f": clean {_pct(record['clean_accuracy'], 2)}, {record['metric']} "
    board += _pct(record.get("robust_accuracy"), 2)
    if record.get("eps"):
        board += f" at eps {record['eps']}"
    if record.get("external") is not None:
        board += f", external evaluation {_pct(record['external'], 2)}"
    if record.get("unreliable"):
        board += " (marked unreliable on the leaderboard)"
    ours = record.get("ours") or {}
    if not ours:
        return [("leaderboard", board), ("ours", "no audited rows to compare")]
    text = f"{ours['n']} samples, clean {_pct(ours['clean_accuracy'])} "
    text += f"(95% CI {_span(ours['clean_ci_low'], ours['clean_ci_high'])}), "
    text += f"clean gap {_points(record['clean_gap'])}; "
    text += _robust_text(record, ours)
    return [("leaderboard", board), ("ours", text)]


def _robust_text(record: dict[str, Any], ours: dict[str, Any]) -> str:
    if record["threat"] == "corruptions":
        if not record["audited"]:
            return "corruptions were not audited: add --corruptions all"
        return (
            f"corruption accuracy {_pct(ours['robust_accuracy'])} (ours synthesised, the "
            f"leaderboard's on the -C datasets), gap {_points(record['gap'])}"
        )
    norm, option = NORMS[record["threat"]]
    eps = f"eps {record.get('eps')}"
    if not record["audited"]:
        value = record.get("eps_value")
        if value is None:
            return f"the leaderboard gives no {record['threat']} eps to compare at"
        return f"{eps} ({value:.7g}) was not audited: add {value:.7g} to {option}"
    text = f"worst case at {norm} {eps} {_pct(ours['robust_accuracy'])}"
    if ours.get("ci_low") is None:
        return f"{text}, gap {_points(record['gap'])}"
    text += f" (95% CI {_span(ours['ci_low'], ours['ci_high'])}), gap {_points(record['gap'])} "
    return text + f"(95% CI {_signed(record['gap_ci_low'])} to {_signed(record['gap_ci_high'])})"


def _matching_row(summary: pd.DataFrame, entry: dict[str, Any]) -> pd.Series | None:
    """Our worst case at the leaderboard's norm and eps (the corruption mean for corruptions)."""
    if entry["threat"] == "corruptions":
        rows = summary[summary["attack"] == CORRUPTION_MEAN]
    elif entry["threat"] in NORMS and entry.get("eps_value") is not None:
        norm = NORMS[entry["threat"]][0]
        rows = summary[(summary["attack"] == WORST_CASE) & (summary["norm"] == norm)]
        close = [math.isclose(e, entry["eps_value"], rel_tol=EPS_TOLERANCE) for e in rows["eps"]]
        rows = rows[close]
    else:
        return None
    return None if rows.empty else rows.iloc[0]


def _interval(successes: int, trials: int) -> tuple[float, float]:
    low, high = clopper_pearson(np.array([successes]), np.array([trials]))
    return float(low[0]), float(high[0])


def _minus(ours: float | None, board: float | None) -> float | None:
    return None if ours is None or board is None else round(ours - board, 6)


def _missing(value: Any) -> bool:
    return value is None or value != value


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def _span(low: float, high: float) -> str:
    return f"{low:.1%}-{high:.1%}"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{_signed(value)} points"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}"
