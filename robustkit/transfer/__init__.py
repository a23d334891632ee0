"""Transfer attacks: adversarials crafted on source models, replayed on target models.

``matrix`` crafts and replays (:func:`transfer_matrix`); ``result`` holds the tidy frame, its
column list and files (:class:`TransferResult`); ``plot`` draws the heatmap (the CLI figure and
the report's); ``sklearn_targets`` trains scikit-learn classifiers as extra targets.

``transfer_matrix`` loads on first use, so that the report reads saved matrices without loading
the attacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robustkit.transfer.result import COLUMNS, TransferResult

__all__ = ["COLUMNS", "TransferResult", "transfer_matrix"]

if TYPE_CHECKING:
    from robustkit.transfer.matrix import transfer_matrix


def __getattr__(name: str) -> Any:
    if name == "transfer_matrix":
        from robustkit.transfer.matrix import transfer_matrix

        return transfer_matrix
    raise AttributeError(f"module 'robustkit.transfer' has no attribute {name!r}")
