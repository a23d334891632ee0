"""The noise probes sized to the audit: cut on large inputs and whole on MNIST, `full` and `off`,
counted in the progress bar, said in one line on the terminal and recorded in run.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from imagefolders import write_image_folder
from rich.progress import Progress
from torch import nn
from typer.testing import CliRunner

import robustkit
from robustkit.auditing import engine
from robustkit.auditing.noise_probes import FULL, choose_probes
from robustkit.auditing.plan import plan_audit
from robustkit.cli import app
from robustkit.errors import RobustkitError

DEFAULTS: dict[str, Any] = {
    "steps": None,
    "restarts": None,
    "eps_l2": None,
    "sigmas": None,
    "eps_l1": None,
}
FGSM = plan_audit(["fgsm"], None, eps=[0.1, 0.2, 0.3], **DEFAULTS)  # the CLI's default eps
STANDARD = plan_audit(None, "standard", eps=[0.1, 0.2, 0.3], **DEFAULTS)  # the default audit
TINY_CONV = """import torch
from torch import nn
def make():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 8, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 2))
"""  # tiny_conv as a file.py:factory model for the CLI


def tiny_conv() -> nn.Module:
    """A seeded two-class conv net of any input size: cheap even at 224 px."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 8, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 2),
    )  # fmt: skip


def labelled(model: nn.Module, size: int, count: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return x, model(x).argmax(dim=1)


def test_auto_cuts_the_probes_of_a_small_audit_on_large_inputs_only():
    large = choose_probes("auto", FGSM, num_samples=6, input_shape=(3, 224, 224), num_classes=1000)
    assert large.cut and large.plan is not None
    assert (large.plan.grid, large.plan.samples_per_cell) == (3, 4)
    assert (large.plan.targets, large.plan.samples_per_class, large.plan.steps) == (2, 2, 5)
    assert large.passes == 9 * 4 + 2 * 2 * (2 + 3 * 5) <= large.allowed_passes
    assert large.allowed_passes < FULL.passes(1000) / 100
    # MNIST keeps today's probes, the small audit and the default one alike
    for plan, samples in ((FGSM, 8), (STANDARD, 100)):
        mnist = choose_probes(
            "auto", plan, num_samples=samples, input_shape=(1, 28, 28), num_classes=10
        )
        assert mnist.plan == FULL and not mnist.cut
    # sized to the audit: the default audit affords the whole probes at 224 px too
    big = choose_probes(
        "auto", STANDARD, num_samples=100, input_shape=(3, 224, 224), num_classes=1000
    )
    assert big.plan == FULL and big.passes <= 0.2 * big.audit_passes


def test_full_off_and_the_old_booleans():
    shape: dict[str, Any] = {"num_samples": 6, "input_shape": (3, 224, 224), "num_classes": 1000}
    assert choose_probes("full", FGSM, **shape).plan == FULL
    off = choose_probes("off", FGSM, **shape)
    assert off.plan is None and off.passes == 0 and off.record()["cut"] is False
    assert choose_probes(False, FGSM, **shape).plan is None
    assert choose_probes(True, FGSM, **shape).cut
    with pytest.raises(RobustkitError, match="auto, full or off"):
        choose_probes("some", FGSM, **shape)


def test_an_audit_runs_and_records_the_cut_probes_and_full_runs_them_whole():
    model = tiny_conv()
    data = labelled(model, 32)
    kw: dict[str, Any] = {"attacks": ["fgsm"], "eps": [0.1, 0.2, 0.3], "device": "cpu"}
    cut = robustkit.audit(model, data, **kw)
    record = cut.config["noise_probes"]
    assert record["mode"] == "auto" and record["cut"]
    assert (record["grid"], record["samples_per_cell"], record["samples_per_class"]) == (10, 32, 8)
    assert record["passes"] <= record["allowed_passes"] < record["full_passes"]
    assert cut.noise_grid is not None and len(cut.noise_grid) == 100
    assert cut.noise_targets is not None and list(cut.noise_targets["target"]) == [0, 1]
    full = robustkit.audit(model, data, noise_probes="full", **kw)
    assert full.config["noise_probes"]["cut"] is False
    assert full.config["noise_probes"]["samples_per_cell"] == 64
    assert full.config["noise_probes"]["passes"] == record["full_passes"]
    assert full.noise_grid is not None and len(full.noise_grid) == 100
    assert not full.noise_grid.equals(cut.noise_grid)  # other draws: 64 images per cell
    off = robustkit.audit(model, data, noise_probes=False, **kw)
    assert off.noise_grid is None and off.config["noise_probes"]["mode"] == "off"


def test_the_progress_bar_counts_the_probes(monkeypatch):
    bars: list[Progress] = []
    make_bar = engine.progress_bar

    def spy(*args, **kwargs) -> Progress:
        bars.append(make_bar(*args, **kwargs))
        return bars[-1]

    monkeypatch.setattr(engine, "progress_bar", spy)
    model = tiny_conv()
    result = robustkit.audit(
        model, labelled(model, 64), attacks=["fgsm"], eps=[0.1, 0.2, 0.3], progress=True
    )
    (task,) = bars[0].tasks
    attacks = 3  # fgsm at three budgets, one batch
    record = result.config["noise_probes"]
    probes = attacks * record["passes"] / record["audit_passes"]
    assert probes > attacks  # the probes cost more than this small audit's attacks
    assert task.total == pytest.approx(attacks + probes)
    assert task.completed == pytest.approx(task.total)
    assert task.description == "noise probes"


def _cli_case(tmp_path: Path) -> list[str]:
    (tmp_path / "tiny.py").write_text(TINY_CONV)
    folder = write_image_folder(tmp_path / "images", ["a", "b"], size=224)
    model = f"{tmp_path / 'tiny.py'}:make"
    return ["audit", "--model", model, "--dataset", f"imagefolder:{folder}", "--attacks", "fgsm"]


def test_the_terminal_says_in_one_line_that_the_probes_were_cut(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [*_cli_case(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "noise probes" in line]
    assert len(notes) == 1, result.output
    assert notes[0].startswith("note: noise probes cut to the audit's size: a 3 x 3 noise grid")
    assert notes[0].endswith("--noise-probes full runs them whole")
    record = json.loads((out / "run.json").read_text())["noise_probes"]
    assert record["cut"] and record["grid"] == 3
    assert len(pd.read_csv(out / "noise_grid.csv")) == 9
    assert "noise probes cut to the audit" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    ("options", "mode", "grid"),
    [(["--noise-probes", "full"], "full", 10), (["--no-noise-probes"], "off", None)],
)
def test_the_cli_runs_the_probes_whole_or_not_at_all(tmp_path, options, mode, grid):
    out = tmp_path / "out"
    args = [*_cli_case(tmp_path), "--image-size", "8", *options, "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "noise probes cut" not in result.output
    record = json.loads((out / "run.json").read_text())["noise_probes"]
    assert record["mode"] == mode and record.get("grid") == grid
    assert (out / "noise_grid.csv").is_file() == (grid is not None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--noise-probes", "half"], "take auto, full or off, got 'half'"),
        (["--noise-probes", "full", "--no-noise-probes"], "--no-noise-probes contradicts"),
    ],
)
def test_a_bad_probe_option_is_one_line(tmp_path, options, message):
    result = CliRunner().invoke(app, ["audit", *options, "--out", str(tmp_path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
