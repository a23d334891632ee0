"""`robustkit audit` on real image folders (labels in the model's classes, --labels) and with the
GPU-path options (--precision, --channels-last, --compile), recorded in run.json; bad input is
one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from imagefolders import truncate, write_image_folder
from typer.testing import CliRunner

from robustkit.cli import app

runner = CliRunner()
TIMM = ["--model", "timm:resnet10t", "--image-size", "32"]
QUICK = ["--attacks", "fgsm", "--eps", "0.01", "--no-noise-probes"]


def audit(*args: str):
    return runner.invoke(app, ["audit", *args])


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.slow
def test_a_three_class_folder_under_an_imagenet_model_audits_end_to_end(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "images", ["n01530575", "Goldfish", "tiger_shark"])
    out = tmp_path / "out"
    result = audit(
        *TIMM,
        "--dataset",
        f"imagefolder:{folder}",
        "--attacks",
        "fgsm",
        "--eps",
        "0.01",
        "--steps",
        "2",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out / "results.csv")
    assert set(rows["label"]) == {10, 1, 3}  # brambling, goldfish, tiger shark
    run = json.loads((out / "run.json").read_text())
    assert len(run["classes"]) == 1000 and run["classes"][3] == "tiger shark"
    grid = pd.read_csv(out / "noise_grid.csv")  # the pure-noise probe over 1,000 classes
    assert set(grid["top1_name"]) <= set(run["classes"])
    targets = pd.read_csv(out / "noise_targets.csv")
    assert len(targets) == 10 and targets["target"].max() == 999
    report = (out / "report.html").read_text()
    assert "brambling" in report


def test_a_labels_file_maps_folders_to_the_models_classes(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "images", ["cat", "dog"])
    labels = tmp_path / "labels.csv"
    labels.write_text("folder,index\ncat,281\ndog,207\n")
    out = tmp_path / "out"
    args = ["--dataset", f"imagefolder:{folder}", "--labels", str(labels), "--out", str(out)]
    result = audit(*TIMM, *QUICK, *args)
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(out / "results.csv")["label"]) == {281, 207}
    run = json.loads((out / "run.json").read_text())
    assert run["classes"][281] == "tabby" and run["classes"][207] == "golden retriever"


def test_precision_and_channels_last_are_recorded(tmp_path: Path) -> None:
    args = ["--num-samples", "8", "--precision", "bf16", "--channels-last", "--out", str(tmp_path)]
    result = audit(*QUICK, *args)
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["model_info"]["execution"] == {
        "precision": "bf16",
        "channels_last": True,
        "compile": False,
    }


def bad_folder(tmp_path: Path, kind: str) -> Path:
    if kind == "empty":
        (tmp_path / "images").mkdir()
        return tmp_path / "images"
    if kind == "unmatched":
        return write_image_folder(tmp_path / "images", ["cat", "goldfish"], per_class=1)
    folder = write_image_folder(tmp_path / "images", ["goldfish"], suffix=".jpg")
    truncate(folder / "goldfish" / "1.jpg")
    return folder


@pytest.mark.parametrize(
    ("kind", "fragments"),
    [
        ("empty", ["no images found in", "one subfolder per class"]),
        ("unmatched", ["1 of 2 folder(s) name no class of the model: cat:", "--labels"]),
        ("truncated", ["cannot read image", "1.jpg", "truncated", "replace or remove it"]),
    ],
)
def test_a_bad_image_folder_is_one_line(tmp_path: Path, kind: str, fragments) -> None:
    folder = bad_folder(tmp_path, kind)
    result = audit(*TIMM, *QUICK, "--dataset", f"imagefolder:{folder}", "--out", str(tmp_path))
    assert_one_line_error(result, *fragments)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--precision", "fp16", "--device", "cpu"], ["fp16 needs a GPU", "bf16"]),
        (["--precision", "half"], ["unknown precision 'half'", "fp32, bf16, fp16"]),
        (["--labels", "labels.csv"], ["'mnist-sample' is not one: drop --labels"]),
    ],
)
def test_bad_gpu_path_options_are_one_line(tmp_path: Path, args, fragments) -> None:
    result = audit(*QUICK, *args, "--out", str(tmp_path))
    assert_one_line_error(result, *fragments)
