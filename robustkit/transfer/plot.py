"""The transferability heatmap, laid out as in Papernot et al. (2016), Fig. 3.

One drawing, :func:`draw_matrix`, serves both the figure ``robustkit transfer`` writes
(:func:`plot_transfer_matrix`) and the transfer section of the HTML report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

COLORBAR_LABEL = "adversarials misclassified (%)"
LABEL_LIMIT = 24  # characters of a model name on an axis, so long names cannot squeeze the plot


def draw_matrix(ax: Axes, pivot: pd.DataFrame) -> AxesImage:
    """Sources as rows, targets as columns (on top), each cell shaded and labelled with its
    percentage; n/a where no sample was classified correctly by both models."""
    values = pivot.to_numpy(dtype=float) * 100
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=100, aspect="equal")
    for (i, j), value in np.ndenumerate(values):
        text = "n/a" if np.isnan(value) else f"{value:.0f}"
        color = "white" if value > 60 else "black"
        ax.text(j, i, text, ha="center", va="center", fontsize="small", color=color)
    ax.set_xticks(range(values.shape[1]), _labels(pivot.columns), rotation=90)
    ax.set_yticks(range(values.shape[0]), _labels(pivot.index))
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set(xlabel="Target model", ylabel="Source model")
    return image


def plot_transfer_matrix(pivot: pd.DataFrame, *, title: str = "") -> Figure:
    """One matrix with its colour bar and, below, ``title``."""
    rows, cols = pivot.shape
    figure = Figure(figsize=(1.1 * cols + 2.5, 0.8 * rows + 1.8))
    axes = figure.add_subplot()
    image = draw_matrix(axes, pivot)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label=COLORBAR_LABEL)
    if title:
        figure.text(0.5, 0.01, title, ha="center", va="bottom", fontsize=7, wrap=True)
    return figure


def _labels(names: pd.Index) -> list[str]:
    return [
        n if len(n) <= LABEL_LIMIT else n[: LABEL_LIMIT - 1] + "\u2026" for n in map(str, names)
    ]
