"""The progress folder: one file per finished batch, resume, a changed configuration refused,
and a real `kill -9` of a real `robustkit audit` followed by `--resume`."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_audits import Linear, linear_case, saved_outputs
from torch import nn
from typer.testing import CliRunner

import robustkit
from robustkit.auditing.progress import ProgressStore
from robustkit.cli import app
from robustkit.defenses.evaluation import audit_defense
from robustkit.errors import RobustkitError

REPO = Path(__file__).resolve().parents[1]
BATCHES = 4  # 40 samples in batches of 12: 12, 12, 12, 4


@pytest.fixture
def setup() -> tuple[Linear, tuple[torch.Tensor, torch.Tensor]]:
    return linear_case()


def run(model, data, **kw):
    kw.setdefault("attacks", ["pgd-linf", "gaussian-noise"])  # both draw random numbers
    kw.setdefault("eps", [0.05, 0.5])
    kw.setdefault("sigmas", [0.3])
    kw.setdefault("steps", 5)
    kw.setdefault("batch_size", 12)
    kw.setdefault("noise_probes", False)
    return robustkit.audit(model, data, device="cpu", **kw)


def assert_same_result(got: robustkit.AuditResult, expected: robustkit.AuditResult) -> None:
    pd.testing.assert_frame_equal(got.frame, expected.frame)
    pd.testing.assert_frame_equal(got.summary(), expected.summary())
    assert got.config["eps_probes"] == expected.config["eps_probes"]
    assert got.examples is not None and expected.examples is not None
    assert torch.equal(got.examples.adversarial, expected.examples.adversarial)
    pd.testing.assert_frame_equal(got.examples.frame, expected.examples.frame)


def test_every_batch_is_saved_and_loads_with_weights_only(setup, tmp_path):
    model, data = setup
    run(model, data, progress_dir=tmp_path)
    assert ProgressStore(tmp_path).finished() == set(range(BATCHES))
    saved = torch.load(tmp_path / "batch-000003.pt", weights_only=True)
    assert saved["size"] == 4 and saved["examples"] is None
    assert pd.DataFrame(saved["rows"])["sample"].between(36, 39).all()
    assert not list(tmp_path.glob("*.tmp"))


def test_resume_attacks_only_the_missing_batches_and_changes_nothing(setup, tmp_path, monkeypatch):
    model, data = setup
    full = run(model, data)
    run(model, data, progress_dir=tmp_path)
    for index in (0, 2):
        (tmp_path / f"batch-{index:06d}.pt").unlink()
    (tmp_path / "batch-000002.pt.99.tmp").write_bytes(b"half a file")  # a kill during a write
    written: list[int] = []
    write = ProgressStore.write

    def spy(store: ProgressStore, index: int, record) -> None:
        written.append(index)
        write(store, index, record)

    monkeypatch.setattr(ProgressStore, "write", spy)
    resumed = run(model, data, progress_dir=tmp_path, resume=True)
    assert written == [0, 2]
    assert_same_result(resumed, full)
    assert not list(tmp_path.glob("*.tmp"))


class NoisyDefense(nn.Module):
    """A randomized defense: noise on every pass, so EOT and the defense's scoring draw numbers."""

    is_randomized = True

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x + 0.05 * torch.randn_like(x)).clamp(0, 1))


def test_a_defense_audit_resumes_to_the_same_result(setup, tmp_path):
    model, data = setup
    kw = {"attacks": ["pgd-linf"], "eps": [0.1], "steps": 3, "eot_samples": 2, "batch_size": 12}
    full = audit_defense(model, NoisyDefense(model), data, **kw)
    audit_defense(model, NoisyDefense(model), data, progress_dir=tmp_path, **kw)
    (tmp_path / "batch-000001.pt").unlink()
    resumed = audit_defense(
        model, NoisyDefense(model), data, progress_dir=tmp_path, resume=True, **kw
    )
    pd.testing.assert_frame_equal(resumed.frame, full.frame)
    with pytest.raises(RobustkitError, match=r"eot_samples changed \(was 2, now 4\)"):
        audit_defense(
            model,
            NoisyDefense(model),
            data,
            progress_dir=tmp_path,
            resume=True,
            **{**kw, "eot_samples": 4},
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"eps": [0.05, 0.4]}, r"budgets\.linf\[1\] changed \(was 0\.5, now 0\.4\)"),
        ({"steps": 7}, r"attacks\[0\]\.steps changed \(was 5, now 7\)"),
        ({"batch_size": 10}, r"batch_size changed \(was 12, now 10\)"),
        ({"seed": 1}, r"seed changed"),
    ],
)
def test_a_changed_configuration_refuses_to_resume(setup, tmp_path, change, message):
    model, data = setup
    run(model, data, progress_dir=tmp_path)
    with pytest.raises(RobustkitError, match=message):
        run(model, data, progress_dir=tmp_path, resume=True, **change)


def test_other_weights_or_data_refuse_to_resume(setup, tmp_path):
    model, (x, y) = setup
    run(model, (x, y), progress_dir=tmp_path)
    with pytest.raises(RobustkitError, match="samples changed"):
        run(model, (x.flip(0), y.flip(0)), progress_dir=tmp_path, resume=True)
    with torch.no_grad():
        model.fc.bias += 1
    with pytest.raises(RobustkitError, match="weights changed"):
        run(model, (x, y), progress_dir=tmp_path, resume=True)


def test_resume_without_progress_starts_afresh_and_says_so(setup, tmp_path, caplog):
    model, data = setup
    with caplog.at_level(logging.WARNING, logger="robustkit"):
        resumed = run(model, data, progress_dir=tmp_path / "new", resume=True)
    assert [r.getMessage() for r in caplog.records] == [
        f"no progress in {tmp_path / 'new'} to resume from: starting afresh"
    ]
    assert_same_result(resumed, run(model, data))


def test_a_run_without_resume_forgets_earlier_progress(setup, tmp_path):
    model, data = setup
    run(model, data, progress_dir=tmp_path, eps=[0.1])
    again = run(model, data, progress_dir=tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text())["budgets"]["linf"] == [0.05, 0.5]
    assert_same_result(again, run(model, data))


def test_resume_needs_a_progress_folder(setup):
    model, data = setup
    with pytest.raises(RobustkitError, match="progress_dir="):
        run(model, data, resume=True)


def test_cli_refuses_to_resume_under_other_options_in_one_line(tmp_path):
    args = ["audit", "--attacks", "fgsm", "--num-samples", "8", "--no-noise-probes"]
    out = ["--out", str(tmp_path)]
    assert CliRunner().invoke(app, [*args, *out]).exit_code == 0
    changed = CliRunner().invoke(app, [*args, "--eps", "0.3", *out, "--resume"])
    assert changed.exit_code == 2
    lines = changed.output.strip().splitlines()
    assert len(lines) == 1 and "budgets.linf changed" in lines[0]
    assert "rerun with the options of the interrupted audit" in lines[0]


def _audit(out: Path, *extra: str) -> subprocess.Popen:
    args = [
        *("--attacks", "pgd-linf", "--steps", "20", "--eps", "0.1,0.2"),
        *("--num-samples", "96", "--batch-size", "4", "--no-noise-probes", "--out", str(out)),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "robustkit", "audit", *args, *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_after(out: Path, batches: int, *extra: str) -> int:
    """Start the audit, SIGKILL it once ``batches`` batch files are there; the count at death."""
    process = _audit(out, *extra)
    progress = out / "progress"
    while len(list(progress.glob("batch-*.pt"))) < batches:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    return len(list(progress.glob("batch-*.pt")))


def _finish(out: Path, *extra: str) -> None:
    process = _audit(out, *extra)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()


@pytest.mark.slow
def test_an_audit_killed_at_several_points_resumes_to_identical_results(tmp_path):
    _finish(tmp_path / "reference")
    total = 24
    out = tmp_path / "killed"
    first = _kill_after(out, 1)
    second = _kill_after(out, first + 2, "--resume")
    assert 1 <= first < first + 2 <= second < total  # each kill came mid-audit
    _finish(out, "--resume")
    assert saved_outputs(out) == saved_outputs(tmp_path / "reference")
    # killed at once, before any batch: the resume starts from nothing and still agrees
    early = tmp_path / "early"
    process = _audit(early)
    while not (early / "progress" / "manifest.json").is_file():
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    _finish(early, "--resume")
    assert saved_outputs(early) == saved_outputs(tmp_path / "reference")
