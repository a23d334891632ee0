"""Corruptions in the audit: rows, summary, report, seeds, and CIFAR-10-C-layout folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from robustkit.auditing.engine import audit
from robustkit.auditing.plan import Corruptions
from robustkit.auditing.results import CORRUPTION, CORRUPTION_MEAN, CORRUPTION_WORST
from robustkit.cli import app
from robustkit.data import load_dataset

runner = CliRunner()
ARGS = ["--attacks", "fgsm", "--eps", "0.1", "--num-samples", "30", "--no-noise-probes"]


def _run(out: Path, *extra: str) -> pd.DataFrame:
    result = runner.invoke(app, ["audit", *ARGS, *extra, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "summary.csv")


def test_audit_scores_each_corruption_and_severity_as_a_threat_of_its_own(tmp_path: Path) -> None:
    summary = _run(tmp_path, "--corruptions", "fog,contrast", "--severities", "1,5")
    rows = pd.read_csv(tmp_path / "results.csv")
    corrupted = rows[rows["norm"] == CORRUPTION]
    assert len(corrupted) == 2 * 2 * 30  # every sample, corruption and severity
    assert set(zip(corrupted["corruption"], corrupted["severity"], strict=True)) == {
        ("fog", 1),
        ("fog", 5),
        ("contrast", 1),
        ("contrast", 5),
    }
    assert (corrupted["eps"] == corrupted["severity"]).all()
    attacks = rows[rows["norm"] != CORRUPTION]
    assert attacks["corruption"].isna().all() and set(attacks["attack"]) == {"fgsm", "worst-case"}
    cells = summary[(summary["norm"] == CORRUPTION) & (summary["corruption"] != "all")]
    cells = cells[cells["attack"] != CORRUPTION_WORST]
    accuracy = corrupted.groupby(["corruption", "severity"])["robust_correct"].mean()
    assert sorted(cells["robust_accuracy"]) == pytest.approx(sorted(accuracy))
    mean = summary[summary["attack"] == CORRUPTION_MEAN].iloc[0]
    assert mean["robust_accuracy"] == pytest.approx(accuracy.mean())
    worst = summary[summary["attack"] == CORRUPTION_WORST].iloc[0]
    assert worst["robust_accuracy"] == pytest.approx(accuracy.min())
    assert accuracy[(worst["corruption"], worst["severity"])] == accuracy.min()
    assert accuracy[("contrast", 5)] < accuracy[("contrast", 1)]  # 0.15 vs 0.75 of the contrast
    report = (tmp_path / "report.html").read_text()
    assert "Common corruptions" in report and f"{mean['robust_accuracy']:.1%}" in report


def test_same_command_same_numbers_and_a_corruption_alone_keeps_its_numbers(
    tmp_path: Path,
) -> None:
    both = _run(tmp_path / "a", "--corruptions", "gaussian_noise,fog", "--severities", "5")
    again = _run(tmp_path / "b", "--corruptions", "gaussian_noise,fog", "--severities", "5")
    alone = _run(tmp_path / "c", "--corruptions", "fog", "--severities", "5")
    pd.testing.assert_frame_equal(both, again)
    fog = both[(both["attack"] == "fog")]["robust_accuracy"].to_numpy()
    assert fog == pytest.approx(alone[alone["attack"] == "fog"]["robust_accuracy"].to_numpy())


def test_corruption_only_audit_through_the_api() -> None:
    result = audit(
        "zoo:mnist-cnn",
        "mnist-sample",
        attacks=[],
        num_samples=20,
        noise_probes=False,
        corruptions=Corruptions(["brightness"], [3]),
    )
    assert set(result.frame["norm"]) == {CORRUPTION}
    assert result.worst_case().empty  # corruptions are no adversary of the worst case
    assert result.config["corruptions"] == {
        "names": ["brightness"],
        "severities": [3],
        "table": "cifar10",
    }


def _cifar10c_folder(root: Path, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """fog.npy: 5 x n grey 28 x 28 images, severity s filled with 40 * s; labels.npy: n x 5."""
    rng = np.random.default_rng(0)
    images = np.concatenate(
        [
            np.full((n, 28, 28), 40 * s, dtype=np.uint8)
            + rng.integers(0, 5, (n, 28, 28), dtype=np.uint8)
            for s in range(1, 6)
        ]
    )
    labels = np.tile(rng.integers(0, 10, n), 5)
    root.mkdir()
    np.save(root / "fog.npy", images)
    np.save(root / "labels.npy", labels)
    return images, labels


def test_a_cifar10c_folder_loads_one_severity_of_one_corruption(tmp_path: Path) -> None:
    images, labels = _cifar10c_folder(tmp_path / "c")
    info = load_dataset(f"cifar10-c:{tmp_path / 'c'}:fog:3")
    assert len(info.dataset) == 8 and info.input_shape == (1, 28, 28)
    x, y = info.dataset[2]
    assert torch.equal(x, torch.from_numpy(images[16 + 2]).float()[None] / 255)
    assert y == labels[2]
    result = runner.invoke(
        app,
        [
            "audit",
            "--attacks",
            "fgsm",
            "--eps",
            "0.1",
            "--no-noise-probes",
            "--num-samples",
            "0",
            "--dataset",
            f"cifar10-c:{tmp_path / 'c'}:fog:3",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "out" / "results.csv")["sample"].nunique() == 8


def test_a_cifar10c_folder_without_the_corruption_suggests_the_ones_it_has(
    tmp_path: Path, one_line_error
) -> None:
    _cifar10c_folder(tmp_path / "c")
    result = runner.invoke(
        app, ["audit", "--dataset", f"cifar10-c:{tmp_path / 'c'}:fgo:1", "--out", str(tmp_path)]
    )
    one_line_error(result, "unknown corruption in", "did you mean fog")
