"""The CLI: the default audit end to end, and one clear line with exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from robustkit.auditing.results import SUMMARY_COLUMNS, WORST_CASE
from robustkit.cli import app
from robustkit.commands.audit import DEFAULT_NUM_SAMPLES

runner = CliRunner()
FAST = ["--num-samples", "20", "--steps", "5", "--eps", "0.3", "--eps-l2", "2", "--sigmas", "0.3"]


def audit(*args: str):
    return runner.invoke(app, ["audit", *args])


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.slow
def test_default_audit_writes_results_summary_and_run_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["robustkit", "audit"])
    result = runner.invoke(app, ["audit"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "robustkit-results"
    rows = pd.read_csv(out / "results.csv")
    assert rows["sample"].nunique() == DEFAULT_NUM_SAMPLES
    diagnostics = {"fgsm", "pgd-linf", "gaussian-noise"}
    suite = {"apgd-ce", "apgd-t", "fab-t", "square"}  # the standard suite, L-inf only by default
    assert set(rows["attack"]) == diagnostics | suite | {WORST_CASE}
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary["clean_accuracy"].min() > 0.97
    worst = summary[(summary["attack"] == WORST_CASE) & (summary["norm"] == "linf")]
    assert worst["robust_accuracy"].is_monotonic_decreasing
    assert worst["robust_accuracy"].iloc[-1] < 0.2  # a natural model falls apart at eps 0.3
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "robustkit audit" and run["seed"] == 0
    assert "robust acc" in result.stdout and WORST_CASE in result.stdout
    assert "95% CI" in result.stdout


def test_a_masked_model_is_flagged_below_the_table_and_fails_strict(tmp_path):
    args = ["--model", "robustkit.models.masked:scaled_mnist_cnn", "--attacks", "pgd-linf"]
    args += ["--eps", "0.3", "--num-samples", "20", "--no-noise-probes", "--out", str(tmp_path)]
    lenient = audit(*args)
    assert lenient.exit_code == 0, lenient.output
    table_end = lenient.stdout.index("\u2514")  # the table's bottom-left corner
    flag = lenient.stdout.index("zero-gradients")
    assert flag > table_end  # on the terminal, below the number it puts in doubt
    strict = audit(*args, "--strict")
    assert strict.exit_code == 1
    assert "zero-gradients" in strict.stdout and "--strict" in strict.stderr


def test_quick_suite_says_it_is_no_evaluation(tmp_path):
    result = audit(
        "--suite",
        "quick",
        "--attacks",
        "",
        "--eps",
        "0.3",
        "--num-samples",
        "10",
        "--no-noise-probes",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "not an evaluation" in result.stdout
    rows = pd.read_csv(tmp_path / "results.csv")
    assert set(rows["attack"]) == {"apgd-ce", "apgd-t", WORST_CASE}


def test_small_audit_runs_and_is_reproducible(tmp_path):
    first = audit(*FAST, "--out", str(tmp_path / "a"))
    second = audit(*FAST, "--out", str(tmp_path / "b"))
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    a = pd.read_csv(tmp_path / "a" / "results.csv")
    b = pd.read_csv(tmp_path / "b" / "results.csv")
    pd.testing.assert_frame_equal(a, b)


def test_defense_audit_runs_the_three_attack_families(tmp_path):
    result = audit(
        *["--num-samples", "6", "--attacks", "pgd-linf", "--eps", "0.3", "--steps", "3"],
        *["--defense", "manifold:zoo:mnist-dcgan", "--projection-steps", "5"],
        *["--projection-restarts", "2", "--eot-samples", "2", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    attacks = set(pd.read_csv(tmp_path / "summary.csv")["attack"])
    assert {"oblivious:pgd-linf", "bpda:pgd-linf", "bpda-eot:pgd-linf", WORST_CASE} <= attacks


def test_defense_audit_adds_the_latent_attack_to_the_defaults(tmp_path):
    result = audit(
        *["--num-samples", "4", "--eps", "0.3", "--eps-l2", "2", "--sigmas", "0.3"],
        *["--steps", "2", "--defense", "manifold:zoo:mnist-dcgan", "--projection-steps", "3"],
        *["--projection-restarts", "1", "--eot-samples", "1", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    attacks = set(pd.read_csv(tmp_path / "summary.csv")["attack"])
    assert {"bpda-eot:pgd-l2", "oblivious:fgsm", "latent:latent-overpowered"} <= attacks


def test_latent_attack_without_a_defense_is_one_line(tmp_path):
    result = audit("--attacks", "latent-overpowered", "--num-samples", "4", "--out", str(tmp_path))
    assert_one_line_error(result, "--defense manifold:zoo:mnist-dcgan")


def test_unknown_defense_is_one_line(tmp_path):
    assert_one_line_error(
        audit("--defense", "jpeg:90", "--out", str(tmp_path)), "manifold:zoo:mnist-dcgan"
    )


def test_listing_commands(tmp_path):
    attacks = runner.invoke(app, ["attacks", "pgd*"])
    assert attacks.exit_code == 0 and attacks.stdout.split() == ["pgd-l2", "pgd-linf"]
    models = runner.invoke(app, ["models"])
    assert models.exit_code == 0 and "zoo:mnist-cnn" in models.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--attacks", "pgd-lnf"], ["unknown attack 'pgd-lnf'", "did you mean pgd-linf"]),
        (["--suite", "standrd"], ["unknown suite 'standrd'", "did you mean standard"]),
        (["--model", "zoo:mnist-cn"], ["mnist-cnn"]),
        (["--model", "resnet18"], ["timm:NAME"]),
        (["--dataset", "mnsit"], ["mnist"]),
        (["--eps", "-0.1"], ["eps must be >= 0"]),
        (["--eps", "2"], ["exceeds the pixel range"]),
        (["--eps", "a,b"], ["--eps takes comma-separated numbers"]),
        (["--num-samples", "5000"], ["1000"]),
        (["--checkpoint", "no/such/file.pt"], ["not found"]),
        (["--model", "timm:resnet18"], ["channel"]),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(args, fragments, tmp_path):
    assert_one_line_error(audit(*args, "--out", str(tmp_path / "out")), *fragments)


def test_unwritable_output_folder_is_refused():
    # /proc refuses new folders even to root
    assert_one_line_error(audit("--out", "/proc/robustkit-out"), "choose another --out")


def test_output_path_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(audit("--out", str(blocker / "out")), "choose another --out")


def test_probability_model_is_refused_with_the_fix(tmp_path):
    factory = Path(tmp_path / "softmax_model.py")
    factory.write_text(
        "from torch import nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(dim=1))\n"
    )
    result = audit("--model", f"{factory}:make", "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "remove the softmax")
