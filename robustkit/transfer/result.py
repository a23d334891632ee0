"""A transferability matrix as a tidy frame: its one column list, its files and its pivot; with
universal perturbations, their fooling rate and accuracy per source and target."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from robustkit.auditing.results import ensure_writable_dir
from robustkit.errors import RobustkitError

COLUMNS = ["source", "target", "eps", "attack", "n", "success_rate", "conditioned"]
# per source's universal perturbation and target: predictions changed, accuracy clean and with it
UNIVERSAL_COLUMNS = [
    "source",
    "target",
    "norm",
    "eps",
    "n",
    "fooling_rate",
    "clean_accuracy",
    "accuracy",
]
STEM = "transfer_matrix"
UNIVERSAL_STEM = "transfer_universal"


@dataclass
class TransferResult:
    """The tidy frame (two rows per cell: conditioned and not) and the run's configuration;
    with universal perturbations, ``universal`` (UNIVERSAL_COLUMNS) and the perturbations
    ((C, H, W) per source)."""

    frame: pd.DataFrame
    config: dict[str, Any] = field(default_factory=dict)
    universal: pd.DataFrame | None = None
    perturbations: dict[str, Tensor] | None = None

    def pivot(self, conditioned: bool = True) -> pd.DataFrame:
        """Success rates with sources as rows and targets as columns, in the order given."""
        return pivot(self.frame, conditioned)

    def save(self, out_dir: str | Path) -> Path:
        """Write transfer_matrix.csv, .pivot.csv (conditioned), .svg, .png and .json; with
        universal perturbations, transfer_universal.csv and .pt (weights-only loadable)."""
        from robustkit.transfer.plot import plot_transfer_matrix  # lazy: matplotlib

        out = ensure_writable_dir(out_dir)
        self.frame.to_csv(out / f"{STEM}.csv", index=False)
        self.pivot().to_csv(out / f"{STEM}.pivot.csv")
        figure = plot_transfer_matrix(self.pivot(), title=self.title())
        for suffix in ("svg", "png"):
            figure.savefig(out / f"{STEM}.{suffix}", dpi=150, bbox_inches="tight")
        (out / f"{STEM}.json").write_text(json.dumps(self.config, indent=2, default=str))
        if self.universal is not None:
            self.universal.to_csv(out / f"{UNIVERSAL_STEM}.csv", index=False)
        if self.perturbations:
            torch.save(self.perturbations, out / f"{UNIVERSAL_STEM}.pt")
        return out

    def title(self) -> str:
        """One line naming the attack, budget and conditioning."""
        config = self.config
        return (
            f"{config['attack']['name']} eps={config['eps']:g} on {config['num_samples']} images: "
            "share of adversarials misclassified, over samples both models classify correctly"
        )


def pivot(frame: pd.DataFrame, conditioned: bool = True) -> pd.DataFrame:
    """Sources as rows, targets as columns, both in order of first appearance in ``frame``
    (rows of several runs for one cell are averaged)."""
    rows = frame[frame["conditioned"].astype(bool) == conditioned]
    table = rows.pivot_table(index="source", columns="target", values="success_rate")
    return table.reindex(index=rows["source"].unique(), columns=rows["target"].unique())


def read_frames(dirs: Sequence[Path]) -> pd.DataFrame | None:
    """The transfer matrices saved in ``dirs``, stacked; None when there are none."""
    frames = []
    for path in (Path(d) / f"{STEM}.csv" for d in dirs):
        if not path.is_file():
            continue
        frame = pd.read_csv(path)
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise RobustkitError(
                f"{path} lacks the columns {', '.join(missing)}: a transfer matrix needs "
                f"{', '.join(COLUMNS)}"
            )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).drop_duplicates() if frames else None
