"""`robustkit train`: one-line errors for bad input, and every output file written."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from robustkit.cli import app

runner = CliRunner()


def _train(*args: str):
    return runner.invoke(app, ["train", *args])


def test_cli_unknown_method(tmp_path, one_line_error):
    result = _train("--method", "pgdd", "--out", str(tmp_path / "m.pt"))
    one_line_error(result, "unknown training method 'pgdd'", "did you mean pgd")


def test_cli_negative_eps(tmp_path, one_line_error):
    one_line_error(_train("--eps", "-0.1", "--out", str(tmp_path / "m.pt")), "--eps")


def test_cli_missing_dataset(tmp_path, one_line_error):
    result = _train("--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.pt"))
    one_line_error(result, "MNIST not found", "--data-root")


def test_cli_unknown_dataset(tmp_path, one_line_error):
    one_line_error(_train("--dataset", "mnistt", "--out", str(tmp_path / "m.pt")), "mnist")


def test_cli_unwritable_output(tmp_path, one_line_error):
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_error(_train("--out", str(blocker / "m.pt")), "cannot write")


def test_cli_unknown_architecture(tmp_path, one_line_error):
    result = _train(
        "--model", "arch:resnet", "--dataset", "mnist-sample", "--out", str(tmp_path / "m.pt")
    )
    one_line_error(result, "unknown architecture 'resnet'", "fast-mnist")


def test_cli_missing_checkpoint(tmp_path, one_line_error):
    result = _train("--resume", str(tmp_path / "m.ckpt.pt"), "--out", str(tmp_path / "m.pt"))
    one_line_error(result, "--resume", "not found")


def test_cli_trains_and_writes_every_output(tmp_path):
    out = tmp_path / "m.pt"
    result = _train(
        "--dataset", "mnist-sample", "--num-samples", "200", "--method", "fgsm-rs", "--eps", "0.1",
        "--epochs", "1", "--batch-size", "50", "--holdout", "50", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout
    for suffix in (".pt", ".json", ".metrics.csv", ".ckpt.pt"):
        assert out.with_suffix(suffix).is_file()
    assert json.loads(out.with_suffix(".json").read_text())["model_spec"] == "arch:fast-mnist"


def test_cli_fine_tunes_on_a_generators_range(tmp_path):
    out = tmp_path / "m.pt"
    result = _train(
        "--model", "zoo:mnist-cnn", "--dataset", "mnist-sample", "--num-samples", "150",
        "--method", "manifold", "--generator", "zoo:mnist-dcgan", "--steps", "2", "--epochs", "1",
        "--batch-size", "50", "--holdout", "50", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert (meta["config"]["method"], meta["config"]["generator"]) == (
        "manifold",
        "zoo:mnist-dcgan",
    )
    assert meta["model_spec"] == "zoo:mnist-cnn"


def test_cli_manifold_without_generator_is_one_line(tmp_path, one_line_error):
    result = _train("--method", "manifold", "--out", str(tmp_path / "m.pt"))
    one_line_error(result, "--generator")
