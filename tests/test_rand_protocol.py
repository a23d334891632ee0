"""The rand protocol: randomized canaries attacked with EOT and judged over fresh passes.

Each canary (input noise, random resize-and-pad, dropout left on) is the bundled MNIST CNN made
random. The naive attack (one pass decides its early stop and its best point) leaves adversarials
that fresh passes often classify correctly; the protocol's attacks must do much better, and the
number the audit reports must be what its saved adversarials give on passes of their own.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import robustkit
from robustkit.attacks import create_attack
from robustkit.auditing.results import adversarial_key
from robustkit.cli import app
from robustkit.models import load_model
from robustkit.models.masked import NoisyInput
from robustkit.models.passes import EOT, pass_logits, score
from robustkit.models.randomized import FeatureDropout, ResizePad

EPS = 0.15  # MNIST L-inf: where one-pass attacks on these canaries visibly fall short
IMAGES, PASSES, RESCORE = 16, 10, 40
CANARIES = {"noise": NoisyInput, "resize-pad": ResizePad, "dropout": FeatureDropout}


@pytest.fixture(scope="module")
def classifier() -> torch.nn.Module:
    return load_model("zoo:mnist-cnn", device="cpu")


def _expected(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, passes: int) -> float:
    return float((score(model, x, y, passes).correct / passes).mean())


def test_pass_logits_runs_every_pass_and_eot_averages_them(classifier):
    torch.manual_seed(0)
    noisy = NoisyInput(classifier)
    x = torch.rand(3, 1, 28, 28)
    passes = pass_logits(noisy, x, 6)
    assert passes.shape == (6, 3, 10)
    assert not torch.allclose(passes[0], passes[1])  # fresh noise on every pass
    torch.manual_seed(1)
    expected = pass_logits(noisy, x, 6).mean(dim=0)
    torch.manual_seed(1)
    assert torch.allclose(EOT(noisy, samples=6)(x), expected)


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    dataset = robustkit.data.load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(IMAGES)])
    return x, torch.tensor([int(dataset[i][1]) for i in range(IMAGES)])


@pytest.mark.parametrize("name", sorted(CANARIES))
def test_canaries_are_random_yet_mostly_right_on_clean_inputs(classifier, images, name):
    canary = CANARIES[name](classifier)
    x, y = images
    torch.manual_seed(0)
    with torch.no_grad():
        assert not torch.equal(canary(x), canary(x))
    assert _expected(canary, x, y, PASSES) > 0.85


@pytest.mark.parametrize("name", sorted(CANARIES))
def test_eot_audit_beats_the_one_pass_attack_and_reports_what_its_adversarials_give(
    classifier, images, name
):
    canary = CANARIES[name](classifier)
    x, y = images
    result = robustkit.audit(
        canary,
        (x, y),
        attacks=[create_attack("apgd-ce", steps=20)],
        eps=[EPS],
        device="cpu",
        noise_probes=False,
        eot_samples=5,
        eval_passes=PASSES,
    )
    assert result.config["protocol"]["randomized"]
    rows = result.frame.sort_values("sample")
    assert rows["sample"].tolist() == list(range(IMAGES)) and set(rows["passes"]) == {PASSES}
    assert rows["correct_passes"].between(0, PASSES).all()
    reported = float(result.robust_accuracy("apgd-ce")[("linf", EPS)])
    assert reported == pytest.approx((rows["correct_passes"] / PASSES).mean())

    # the saved adversarials, scored on passes of their own, give the reported number
    assert result.adversarials is not None
    x_adv = result.adversarials[adversarial_key(rows["model"].iloc[0], "apgd-ce", "linf", EPS)]
    assert (x_adv - x).abs().amax() <= EPS + 1e-6
    torch.manual_seed(1)
    rescored = _expected(canary, x_adv, y, RESCORE)
    assert abs(rescored - reported) < 0.1  # sampling noise of 16 x 10 and 16 x 40 passes

    # the naive attack on the same images: one pass judges its early stop and best point
    naive = create_attack("apgd-ce", steps=20)(canary, x, y, eps=EPS)
    assert reported < _expected(canary, naive.x_adv, y, RESCORE) - 0.1


def test_deterministic_rows_count_one_pass(classifier):
    result = robustkit.audit(
        classifier,
        "mnist-sample",
        attacks=["fgsm"],
        eps=[0.1],
        num_samples=8,
        device="cpu",
        noise_probes=False,
    )
    assert not result.config["protocol"]["randomized"]
    assert set(result.frame["passes"]) == {1}
    assert result.adversarials is None
    summary = result.summary()
    assert (summary["robust_all_passes"] == summary["robust_accuracy"]).all()
    assert (summary["robust_majority"] == summary["robust_accuracy"]).all()


@pytest.mark.slow
def test_cli_gives_a_randomized_model_the_rand_suite_and_states_the_rule(tmp_path):
    command = (
        "audit --model robustkit.models.randomized:resize_pad_mnist_cnn --randomized "
        f"--num-samples 4 --eps {EPS} --sigmas 0.3 --eot-samples 2 --eval-passes 3 --steps 5 "
        f"--no-noise-probes --out {tmp_path}"
    )
    result = CliRunner().invoke(app, command.split())
    assert result.exit_code == 0, result.output
    assert "protocol: rand" in result.output and "3 fresh passes" in result.output
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["protocol"]["suite"] == "rand" and run["protocol"]["eot_samples"] == 2
    rows = pd.read_csv(tmp_path / "results.csv")
    assert {"apgd-ce", "apgd-dlr"} <= set(rows["attack"]) and set(rows["passes"]) == {3}
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert {"robust_all_passes", "robust_majority"} <= set(summary.columns)
    report = (tmp_path / "report.html").read_text()
    assert "protocol" in report and "expected over 3 passes" in report
    saved = torch.load(tmp_path / "adversarials.pt", weights_only=True)
    assert all(images.shape[0] == 4 for images in saved.values())
