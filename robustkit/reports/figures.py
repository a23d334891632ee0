"""Report figures: matplotlib (object API, no pyplot state) rendered to inline SVG markup."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, ParamSpec

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType

from robustkit.auditing.results import WORST_CASE
from robustkit.reports.views import NORM_LABELS
from robustkit.transfer.plot import COLORBAR_LABEL, draw_matrix
from robustkit.transfer.result import pivot

# Text stays text (small, selectable; matplotlib XML-escapes it) in the page's sans-serif font.
SVG_STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "font.size": 9,
    "font.family": "sans-serif",
}
ACCURACY_CMAP = "RdYlGn"
P = ParamSpec("P")
# Checked in every tag (text content is XML-escaped by matplotlib, so holds no tags).
TAG = re.compile(r"<[^>]*>")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
UNSAFE_TAG = re.compile(
    r"^<\s*/?\s*(script|foreignObject|iframe)\b|\son\w+\s*=|javascript:", re.IGNORECASE
)


class UnsafeSVGError(ValueError):
    """A figure's SVG holds markup that could run script once inlined into HTML."""


def svg_markup(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element, without comments, checked to hold no script."""
    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_STYLE):  # text as escaped <text>, not paths plus a comment
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    svg = COMMENT.sub("", text[text.index("<svg") :])
    if any(UNSAFE_TAG.search(tag) for tag in TAG.findall(svg)):
        raise UnsafeSVGError("a report figure contains script-like markup; refusing to inline it")
    return svg


def _styled(draw: Callable[P, str]) -> Callable[P, str]:
    """Build and save a figure under the report's matplotlib style."""

    @wraps(draw)
    def styled(*args: P.args, **kwargs: P.kwargs) -> str:
        with matplotlib.rc_context(SVG_STYLE):
            return draw(*args, **kwargs)

    return styled


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


@_styled
def accuracy_curves(summary: pd.DataFrame, radii: pd.DataFrame | None = None) -> str:
    """Robust accuracy vs eps, one panel per norm, one line per attack, worst case in bold; with
    ``radii`` (per-sample robustness radii of a minimum-norm attack) also the continuous curve."""
    norms = list(summary["norm"].unique())
    fig = _figure(3.2 * len(norms), 2.8)
    axes = fig.subplots(1, len(norms), squeeze=False)[0]
    for ax, norm in zip(axes, norms, strict=True):
        rows = summary[summary["norm"] == norm]
        for attack, line in rows.groupby("attack", sort=False):
            worst = attack == WORST_CASE
            ax.plot(
                line["eps"],
                line["robust_accuracy"],
                marker="o",
                label=str(attack),
                color="black" if worst else None,
                linestyle="--" if worst else "-",
                linewidth=2.5 if worst else 1.5,
                zorder=3 if worst else 2,
            )
        if radii is not None:
            _radius_curves(ax, radii[radii["norm"] == norm], float(rows["eps"].max()))
        ax.set(xlabel=NORM_LABELS.get(str(norm), str(norm)), ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("robust accuracy")
    return svg_markup(fig)


def _radius_curves(ax: Axes, radii: pd.DataFrame, largest: float) -> None:
    """Share of samples whose radius exceeds eps, for every eps up to ``largest``."""
    for attack, group in radii.groupby("attack", sort=False):
        eps = np.linspace(0.0, largest, 200)
        values = np.sort(group["radius"].to_numpy())
        robust = 1.0 - np.searchsorted(values, eps, side="left") / len(values)
        ax.plot(eps, robust, linestyle=":", linewidth=1.5, label=f"{attack} (radius)")


def _heatmap(
    ax: Axes,
    values: np.ndarray,
    labels: Sequence[Sequence[str]],
    *,
    cmap: str = ACCURACY_CMAP,
    vmin: float = 0.0,
    vmax: float = 1.0,
) -> None:
    """Colour cells by value and write ``labels`` in them, in black or white for contrast."""
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if np.isnan(value):
            continue
        rgb = image.cmap(image.norm(value))[:3]
        dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 0.5
        color = "white" if dark else "black"
        ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=7, color=color)


def _short(text: object, limit: int = 24) -> str:
    """A tick label cut to ``limit`` characters, so long names cannot squeeze the plot away."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _percent_labels(values: np.ndarray) -> list[list[str]]:
    return [["" if np.isnan(v) else f"{v:.0%}" for v in row] for row in values]


@_styled
def per_class(table: pd.DataFrame) -> str:
    """Heatmap of worst-case robust accuracy: true class x budget."""
    values = table.to_numpy(dtype=float)
    fig = _figure(1.0 + 0.75 * table.shape[1], 0.8 + 0.3 * table.shape[0])
    ax = fig.subplots()
    _heatmap(ax, values, _percent_labels(values))
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], rotation=30, ha="right")
    ax.set_yticks(range(table.shape[0]), [_short(i) for i in table.index])
    ax.set_ylabel("true class")
    return svg_markup(fig)


@_styled
def noise_grid(grid: pd.DataFrame) -> str:
    """Pure-noise probe: mean x sigma cells coloured by confidence, labelled with the top-1
    class and its confidence (the figure of chapter 10 of GANs in Action)."""
    means = sorted(grid["mean"].unique())
    sigmas = sorted(grid["sigma"].unique())
    cells = grid.set_index(["mean", "sigma"])
    values = np.array([[cells.loc[(m, s), "confidence"] for s in sigmas] for m in means])
    labels = [
        [
            f"{_short(cells.loc[(m, s), 'top1_name'], 10)}\n{cells.loc[(m, s), 'confidence']:.0%}"
            for s in sigmas
        ]
        for m in means
    ]
    fig = _figure(1.2 + 0.85 * len(sigmas), 0.9 + 0.5 * len(means))
    ax = fig.subplots()
    _heatmap(ax, values, labels, cmap="viridis")
    ax.set_xticks(range(len(sigmas)), [f"{s:.2f}" for s in sigmas])
    ax.set_yticks(range(len(means)), [f"{m:.2f}" for m in means])
    ax.set(xlabel=NORM_LABELS["gaussian"], ylabel="noise mean")
    fig.colorbar(ax.images[0], ax=ax, label="mean top-1 confidence", shrink=0.8)
    return svg_markup(fig)


@_styled
def sigma_sweep(sweep: pd.DataFrame) -> str:
    """Accuracy under additive Gaussian noise as sigma grows."""
    fig = _figure(3.4, 2.6)
    ax = fig.subplots()
    ax.plot(sweep["eps"], sweep["robust_accuracy"], marker="o")
    ax.set(xlabel=NORM_LABELS["gaussian"], ylabel="accuracy under noise", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    return svg_markup(fig)


@_styled
def query_curve(curve: pd.DataFrame) -> str:
    """Robust accuracy against the per-point query budget (log scale), one panel per norm, one
    line per eps: a point counts as broken at a budget when some attack broke it within it."""
    norms = list(curve["norm"].unique())
    fig = _figure(3.2 * len(norms), 2.8)
    axes = fig.subplots(1, len(norms), squeeze=False)[0]
    for ax, norm in zip(axes, norms, strict=True):
        rows = curve[curve["norm"] == norm]
        for (model, eps), line in rows.groupby(["model", "eps"], sort=False):
            several = rows["model"].nunique() > 1
            label = f"{_short(model)}, eps {eps:g}" if several else f"eps {eps:g}"
            ax.plot(line["queries"], line["robust_accuracy"], marker="o", label=label)
        ax.set_xscale("log")
        ax.set(
            xlabel=f"queries per point ({NORM_LABELS.get(str(norm), str(norm))})",
            ylim=(-0.02, 1.02),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("robust accuracy")
    return svg_markup(fig)


@_styled
def transfer(matrix: pd.DataFrame) -> str:
    """Transfer success rates (Papernot layout, see robustkit.transfer.plot), one panel per attack
    and eps; conditioned on both models being right on the clean input when the frame says so."""
    conditioned = bool(matrix["conditioned"].astype(bool).any())
    panels = list(matrix.groupby(["attack", "eps"], sort=True))
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    sources, targets = matrix["source"].nunique(), matrix["target"].nunique()
    fig = _figure((1.9 + 0.5 * targets) * cols + 0.8, (2.3 + 0.45 * sources) * rows)
    axes = fig.subplots(rows, cols, squeeze=False).flatten()
    for ax, ((attack, eps), panel) in zip(axes, panels, strict=False):
        image = draw_matrix(ax, pivot(panel, conditioned))
        ax.set_title(f"{attack}, eps {eps:g}")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.colorbar(image, ax=list(axes[: len(panels)]), shrink=0.8, label=COLORBAR_LABEL)
    return svg_markup(fig)
