"""Evaluator: the tidy frame, its views and the Python API."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from tiny_audits import Linear, linear_case
from torch import nn

import robustkit
from robustkit.attacks import PGDLinf
from robustkit.auditing.results import ROW_COLUMNS, SUMMARY_COLUMNS, WORST_CASE
from robustkit.errors import RobustkitError


@pytest.fixture
def setup() -> tuple[Linear, tuple[torch.Tensor, torch.Tensor]]:
    return linear_case()


def run(model, data, **kw):
    kw.setdefault("attacks", ["fgsm", "pgd-linf"])
    kw.setdefault("eps", [0.0, 0.05, 0.5])
    kw.setdefault("noise_probes", False)
    return robustkit.audit(model, data, device="cpu", **kw)


def test_frame_has_one_row_per_sample_attack_and_eps(setup):
    model, data = setup
    result = run(model, data)
    frame = result.frame
    assert list(frame.columns) == ROW_COLUMNS
    assert len(frame) == 40 * 2 * 3
    assert frame.groupby(["attack", "eps"]).size().eq(40).all()
    assert frame["clean_correct"].mean() == pytest.approx(0.75)
    # a misclassified point is never counted robust, and eps 0 changes nothing
    assert not frame.loc[~frame["clean_correct"], "robust_correct"].any()
    at_zero = frame[frame["eps"] == 0.0]
    assert (at_zero["robust_correct"] == at_zero["clean_correct"]).all()


def test_attacks_only_see_correctly_classified_points(setup):
    model, data = setup
    run(
        model,
        data,
        attacks=["fgsm"],
        eps=[0.05],
        batch_size=40,
        examples_per_attack=0,
        noise_probes=False,
    )
    # the logits check on 2 images, the model probes (two passes to see whether it is
    # randomized, one for its gradients), one clean pass over 40, then FGSM on the 30 correct ones
    assert model.batches[:6] == [2, 40, 40, 40, 40, 30]
    assert max(model.batches[5:]) <= 30


def test_worst_case_is_the_per_sample_minimum_over_attacks(setup):
    model, data = setup
    result = run(model, data)
    frame = result.frame
    worst = result.worst_case()
    assert (worst["attack"] == WORST_CASE).all()
    expected = frame.groupby(["eps", "sample"])["robust_correct"].all()
    got = worst.set_index(["eps", "sample"])["robust_correct"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)
    summary = result.summary()
    assert list(summary.columns) == SUMMARY_COLUMNS
    per_attack = summary[summary["attack"] != WORST_CASE].groupby("eps")["robust_accuracy"].min()
    worst_acc = summary[summary["attack"] == WORST_CASE].set_index("eps")["robust_accuracy"]
    assert (worst_acc <= per_attack + 1e-12).all()


def test_worst_case_keeps_the_prediction_of_a_successful_attack(setup):
    model, data = setup
    worst = run(model, data).worst_case()
    broken = worst[worst["clean_correct"] & ~worst["robust_correct"]]
    assert len(broken) > 0
    assert (broken["adv_pred"] != broken["label"]).all()


def test_worst_case_groups_by_norm(setup):
    model, data = setup
    result = run(model, data, attacks=["pgd-linf", "gaussian-noise"], eps=[0.1], sigmas=[0.1])
    worst = result.worst_case()
    assert sorted(worst["norm"].unique()) == ["gaussian", "linf"]


def test_robust_accuracy_falls_with_eps(setup):
    model, data = setup
    accuracy = run(model, data).robust_accuracy()
    assert accuracy.is_monotonic_decreasing
    assert accuracy.iloc[0] == pytest.approx(0.75)


def test_same_seed_gives_the_same_frame(setup):
    model, data = setup
    first = run(model, data, attacks=["pgd-linf", "gaussian-noise"], sigmas=[0.3]).frame
    second = run(model, data, attacks=["pgd-linf", "gaussian-noise"], sigmas=[0.3]).frame
    pd.testing.assert_frame_equal(first, second)


def test_batch_size_does_not_change_the_verdicts(setup):
    model, data = setup
    attack = PGDLinf(random_start=False)
    small = run(model, data, attacks=[attack], batch_size=7).frame
    large = run(model, data, attacks=[attack], batch_size=40).frame
    pd.testing.assert_frame_equal(small, large)


def test_save_writes_results_summary_and_run_json(setup, tmp_path):
    model, data = setup
    result = run(model, data, attacks=["fgsm"], eps=[0.1])
    result.save(tmp_path / "out")
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(rows["attack"]) == {"fgsm", WORST_CASE}
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    config = json.loads((tmp_path / "out" / "run.json").read_text())
    assert config["seed"] == 0 and config["num_samples"] == 40
    assert config["versions"]["torch"] == torch.__version__


def test_examples_are_successful_adversarials_with_confidences(setup):
    model, data = setup
    result = run(model, data, attacks=["pgd-linf"], eps=[0.5], examples_per_attack=3)
    examples = result.examples
    assert examples is not None and len(examples.frame) == 3
    assert examples.clean.shape == examples.adversarial.shape == (3, 2, 4, 4)
    assert (examples.frame["adv_pred"] != examples.frame["label"]).all()
    assert examples.frame["adv_confidence"].between(1 / 3, 1).all()
    with torch.no_grad():
        assert torch.equal(
            model(examples.adversarial).argmax(dim=1), torch.tensor(examples.frame["adv_pred"])
        )


def test_noise_probes_are_recorded(setup):
    model, data = setup
    result = run(model, data, attacks=["fgsm"], eps=[0.1], noise_probes=True)
    assert result.noise_grid is not None and len(result.noise_grid) == 100
    assert result.noise_targets is not None and list(result.noise_targets["target"]) == [0, 1, 2]


def test_saved_results_load_back(setup, tmp_path):
    model, data = setup
    result = run(model, data, noise_probes=True)
    result.save(tmp_path)
    loaded = robustkit.AuditResult.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.summary(), result.summary())
    assert loaded.examples is not None and result.examples is not None
    assert torch.equal(loaded.examples.adversarial, result.examples.adversarial)
    assert loaded.noise_grid is not None and len(loaded.noise_grid) == 100


def test_loading_a_folder_without_results_names_the_fix(tmp_path):
    with pytest.raises(RobustkitError, match="robustkit audit --out"):
        robustkit.AuditResult.load(tmp_path)


def test_no_attack_is_an_error(setup):
    model, data = setup
    with pytest.raises(RobustkitError, match="at least one attack"):
        run(model, data, attacks=[])


def test_missing_budget_for_a_norm_is_an_error(setup):
    model, data = setup
    with pytest.raises(RobustkitError, match="needs l2 budgets"):
        run(model, data, attacks=["pgd-l2"], eps_l2=[])


def test_images_without_channel_dimension_are_refused(setup):
    model, (x, y) = setup
    with pytest.raises(RobustkitError, match="unsqueeze"):
        run(model, (x[:, 0], y))


def test_softmax_model_is_refused(setup):
    model, data = setup
    with pytest.raises(RobustkitError, match="remove the softmax"):
        run(nn.Sequential(model, nn.Softmax(dim=1)), data)


class OutOfMemoryAbove(nn.Module):
    """A model that runs out of CUDA memory when given more than ``limit`` images."""

    def __init__(self, model: nn.Module, limit: int) -> None:
        super().__init__()
        self.model, self.limit = model, limit
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.model(x)


def test_out_of_memory_halves_the_batch_once_said_and_changes_no_row(caplog):
    model = Linear()
    x = torch.rand(200, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    attack = PGDLinf(random_start=False)
    unsplit = run(model, (x, y), attacks=[attack, "fgsm"], batch_size=100)
    small = OutOfMemoryAbove(model, limit=64)  # the probes look at 64 images: they fit
    with caplog.at_level("WARNING", logger="robustkit"):
        split = run(small, (x, y), attacks=[attack, "fgsm"], batch_size=100)
    pd.testing.assert_frame_equal(
        split.frame.drop(columns="model"), unsplit.frame.drop(columns="model")
    )
    assert [r.getMessage() for r in caplog.records] == [
        "CUDA ran out of memory on a batch of 100 images: going on in chunks of at most 50 "
        "(a smaller --batch-size avoids the retry)"
    ]
    # batch 0 tried 100 images once, then went on in halves; batch 1 started at 50
    assert small.sizes.count(100) == 1 and max(small.sizes[small.sizes.index(100) + 1 :]) == 50


def test_out_of_memory_on_a_single_image_names_the_fix(setup, monkeypatch):
    model, data = setup

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr("robustkit.auditing.batch._Batch.attack", out_of_memory)
    with pytest.raises(RobustkitError, match="out of memory on a single image"):
        run(model, data, batch_size=8)
