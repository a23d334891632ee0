"""The CLI: the default audit end to end, and one clear line with exit code 2 on bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from robustkit.auditing.results import SUMMARY_COLUMNS, WORST_CASE
from robustkit.auditing.spec import DEFAULTS
from robustkit.cli import app

runner = CliRunner()
FAST = ["--num-samples", "20", "--steps", "5", "--eps", "0.3", "--eps-l2", "2", "--sigmas", "0.3"]


def audit(*args: str):
    return runner.invoke(app, ["audit", *args])


@pytest.mark.slow
def test_default_audit_writes_results_summary_and_run_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["robustkit", "audit"])
    result = runner.invoke(app, ["audit"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "robustkit-results"
    rows = pd.read_csv(out / "results.csv")
    assert rows["sample"].nunique() == DEFAULTS.num_samples
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


def test_listing_commands(tmp_path):
    attacks = runner.invoke(app, ["attacks", "pgd*"])
    assert attacks.exit_code == 0 and attacks.stdout.split() == ["pgd-l2", "pgd-linf"]
    models = runner.invoke(app, ["models"])
    assert models.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in models.stdout.splitlines() if "│" in line}
    assert "classifier" in rows["zoo:mnist-cnn"] and "generator" in rows["zoo:mnist-dcgan"]
    assert "zoo:fashion-mnist-dcgan" in rows  # the longest name, never cut


def test_version_is_the_installed_package_version():
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"robustkit {version('robustkit')}"


def test_a_long_model_name_is_never_cut_from_the_table(tmp_path):
    folder = tmp_path / "a_rather_long_folder_name_for_a_model_factory"
    folder.mkdir()
    factory = folder / "my_classifier_definition.py"
    factory.write_text(
        "from robustkit.models.zoo import load_zoo_model\n"
        "def make():\n"
        "    return load_zoo_model('mnist-cnn').model\n"
    )
    spec = f"{factory}:make"
    args = ["--model", spec, "--mean", "0.1307", "--std", "0.3081", "--attacks", "fgsm"]
    args += ["--eps", "0.1", "--num-samples", "4", "--no-noise-probes", "--out", str(tmp_path)]
    result = audit(*args)
    assert result.exit_code == 0, result.output
    assert spec in "".join(result.stdout.split())
    assert "…" not in result.stdout
