"""The row builder: one tidy row per sample x model x attack x eps, for every kind of audit."""

from __future__ import annotations

from typing import Any

import pandas as pd
from torch import Tensor

from robustkit.auditing.outcome import Outcome
from robustkit.auditing.results import CORRUPTION, ROW_COLUMNS

_Key = tuple[str, str, str, float]


class RowStore:
    """Column lists per (model, attack, norm, eps), kept in first-seen order, so that the rows come
    out in the same order whatever the batch size."""

    def __init__(self) -> None:
        self._stores: dict[_Key, dict[str, list[Any]]] = {}

    def add(
        self,
        *,
        model: str,
        attack: str,
        norm: str,
        eps: float,
        first_sample: int,
        labels: Tensor,
        clean_pred: Tensor,
        outcome: Outcome,
    ) -> None:
        """Append one batch's rows for one attack at one budget."""
        columns = self._stores.setdefault(
            (model, attack, norm, eps), {"sample": [], "label": [], "clean_pred": []}
        )
        extra = columns.setdefault("adv_pred", [])
        n = len(labels)
        columns["sample"] += range(first_sample, first_sample + n)
        columns["label"] += labels.tolist()
        columns["clean_pred"] += clean_pred.tolist()
        extra += outcome.adv_pred.tolist()
        columns.setdefault("broken_by", []).extend(outcome.broken_by)
        columns.setdefault("perturbation", []).extend(outcome.perturbation.tolist())
        radius = outcome.radius.tolist() if outcome.radius is not None else [float("nan")] * n
        columns.setdefault("radius", []).extend(radius)

    def frame(self) -> pd.DataFrame:
        """All rows as the tidy frame (ROW_COLUMNS)."""
        if not self._stores:
            return pd.DataFrame({name: [] for name in ROW_COLUMNS})
        frame = pd.concat(
            [
                pd.DataFrame(columns).assign(model=key[0], attack=key[1], norm=key[2], eps=key[3])
                for key, columns in self._stores.items()
            ],
            ignore_index=True,
        )
        frame["clean_correct"] = frame["clean_pred"] == frame["label"]
        frame["robust_correct"] = frame["adv_pred"] == frame["label"]
        corrupted = frame["norm"] == CORRUPTION
        frame["corruption"] = frame["attack"].where(corrupted, "")
        frame["severity"] = frame["eps"].where(corrupted)
        return frame[ROW_COLUMNS]
