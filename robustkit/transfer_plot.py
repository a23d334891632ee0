"""The transferability heatmap, laid out as in Papernot et al. (2016), Fig. 3."""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure


def plot_transfer_matrix(pivot: pd.DataFrame, *, title: str = "") -> Figure:
    """Sources as rows, targets as columns, each cell shaded and labelled with its percentage."""
    rows, cols = pivot.shape
    figure = Figure(figsize=(1.1 * cols + 2.5, 0.8 * rows + 1.8))
    axes = figure.add_subplot()
    values = pivot.to_numpy(dtype=float) * 100
    image = axes.imshow(values, cmap="Blues", vmin=0, vmax=100, aspect="equal")
    for i in range(rows):
        for j in range(cols):
            value = values[i, j]
            axes.text(
                j,
                i,
                "n/a" if math.isnan(value) else f"{value:.0f}",  # n/a: no sample both got right
                ha="center",
                va="center",
                fontsize=10,
                color="white" if value > 60 else "black",
            )
    axes.set_xticks(range(cols), [str(c) for c in pivot.columns], rotation=30, ha="left")
    axes.set_yticks(range(rows), [str(r) for r in pivot.index])
    axes.xaxis.tick_top()
    axes.xaxis.set_label_position("top")
    axes.set_xlabel("Target model")
    axes.set_ylabel("Source model")
    colorbar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    colorbar.set_label("adversarials misclassified (%)")
    if title:
        figure.text(0.5, 0.01, title, ha="center", va="bottom", fontsize=7, wrap=True)
    return figure
