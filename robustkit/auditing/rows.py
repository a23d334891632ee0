"""The row builder: one tidy row per sample x model x attack x eps, for every kind of audit."""

from __future__ import annotations

from typing import Any

import pandas as pd
from torch import Tensor

from robustkit.auditing.outcome import Outcome
from robustkit.auditing.results import CORRUPTION, ROW_COLUMNS, outcomes

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
        samples: Tensor,
        labels: Tensor,
        clean_pred: Tensor,
        outcome: Outcome,
        passes: int = 1,
        clean_correct: Tensor | None = None,
        final_correct: Tensor | None = None,
    ) -> None:
        """Append one batch's rows for one attack at one budget, ``samples`` the images' dataset
        indices. A randomized model's rows count correct passes of ``passes``: the inputs'
        (``clean_correct``), the kept adversarials' when they were chosen (``outcome.correct``)
        and on a fresh scoring (``final_correct``); one pass counts ``clean_pred`` and
        ``adv_pred``."""
        columns = self._stores.setdefault(
            (model, attack, norm, eps), {"sample": [], "label": [], "clean_pred": []}
        )
        extra = columns.setdefault("adv_pred", [])
        n = len(labels)
        columns["sample"] += samples.tolist()
        columns["label"] += labels.tolist()
        columns["clean_pred"] += clean_pred.tolist()
        extra += outcome.adv_pred.tolist()
        columns.setdefault("broken_by", []).extend(outcome.broken_by)
        columns.setdefault("perturbation", []).extend(outcome.perturbation.tolist())
        radius = outcome.radius.tolist() if outcome.radius is not None else [float("nan")] * n
        columns.setdefault("radius", []).extend(radius)
        columns.setdefault("queries", []).extend(outcome.queries.tolist())
        if clean_correct is None or outcome.correct is None or final_correct is None:
            clean_correct = (clean_pred == labels).long()
            final_correct = (outcome.adv_pred == labels).long()
            chosen = final_correct
        else:
            chosen = outcome.correct
        columns.setdefault("passes", []).extend([passes] * n)
        columns.setdefault("clean_passes", []).extend(clean_correct.tolist())
        columns.setdefault("correct_passes", []).extend(final_correct.tolist())
        columns.setdefault("chosen_passes", []).extend(chosen.tolist())

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
        # correct by majority vote over the passes (one pass: the prediction is the label)
        frame["clean_correct"] = 2 * frame["clean_passes"] > frame["passes"]
        frame["robust_correct"] = 2 * frame["correct_passes"] > frame["passes"]
        frame["outcome"] = outcomes(frame)
        corrupted = frame["norm"] == CORRUPTION
        frame["corruption"] = frame["attack"].where(corrupted, "")
        frame["severity"] = frame["eps"].where(corrupted)
        return frame[ROW_COLUMNS]
