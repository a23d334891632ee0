"""RobustBench's published figures for its zoo entries, shipped as robustbench_leaderboard.json
(made by scripts/make_robustbench_leaderboard.py from RobustBench's model_info files)."""

from __future__ import annotations

import functools
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

from robustkit.models.robustbench import ZooEntry

TABLE = Path(__file__).with_name("robustbench_leaderboard.json")
PERCENT = 100.0


@functools.cache
def _table() -> dict[str, Any]:
    return json.loads(TABLE.read_text(encoding="utf-8"))


def parse_eps(text: str | None) -> float | None:
    """A published eps as a number: '8/255' -> 0.0313..., '0.5' -> 0.5; None stays None."""
    if text is None or not str(text).strip():
        return None
    try:
        return float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError):
        return None


def leaderboard_entry(model: str) -> dict[str, Any] | None:
    """The leaderboard's figures for the model named ``robustbench:DATASET/THREAT/NAME``, as
    fractions, with ``found`` False where the leaderboard has no such entry; None for a model of
    any other kind."""
    entry = ZooEntry.parse(model)
    if entry is None:
        return None
    where = {"dataset": entry.dataset, "threat": entry.threat, "name": entry.name}
    table = _table()
    figures = table["models"].get(entry.dataset, {}).get(entry.threat, {}).get(entry.name)
    if figures is None:
        return {**where, "found": False, "source": table["source"]}
    robust_key = "corruptions_acc" if entry.threat == "corruptions" else "autoattack_acc"
    return {
        **where,
        "found": True,
        "source": table["source"],
        "metric": "corruptions" if entry.threat == "corruptions" else "AutoAttack",
        "clean_accuracy": _fraction(figures["clean_acc"]),
        "robust_accuracy": _fraction(figures.get(robust_key)),
        "external": _fraction(figures.get("external")),
        "unreliable": figures.get("unreliable"),
        "eps": None if entry.threat == "corruptions" else figures.get("eps"),
        "eps_value": None if entry.threat == "corruptions" else parse_eps(figures.get("eps")),
        "architecture": figures.get("architecture"),
        "link": figures.get("link"),
    }


def _fraction(percent: float | None) -> float | None:
    """A published percentage as a fraction, without float noise (73.46 -> 0.7346)."""
    return None if percent is None else round(percent / PERCENT, 6)
