"""Universal perturbations (robustkit/attacks/universal.py): the crafting, its place in the audit
(rows, worst case, files, report) and the transfer matrix's universal rows, and bad input."""

from __future__ import annotations

import functools
import json

import pandas as pd
import pytest
import torch
from torch import Tensor, nn
from typer.testing import CliRunner

from robustkit.attacks import PGDLinf
from robustkit.attacks.universal import (
    MIN_IMAGES,
    UniversalPGD,
    apply_universal,
    score_universal,
)
from robustkit.auditing.engine import run_audit
from robustkit.auditing.results import WORST_CASE, AuditResult
from robustkit.auditing.spec import AuditSpec, Budgets
from robustkit.auditing.threats import Threats
from robustkit.auditing.universal import UniversalJob
from robustkit.cli import app
from robustkit.data import crafting_images, load_dataset
from robustkit.errors import RobustkitError
from robustkit.models import load_model
from robustkit.reports import write_report
from robustkit.transfer import transfer_matrix
from robustkit.transfer.matrix import data_tensors

runner = CliRunner()
QUICK = UniversalPGD(epochs=3)  # enough steps to fool a fair share of zoo:mnist-cnn at 0.3


@functools.cache
def split() -> tuple[Tensor, Tensor, Tensor]:
    """Crafting images and held-out (images, labels): two disjoint halves of 400 images of the
    bundled MNIST sample."""
    x, y = data_tensors(load_dataset("mnist-sample", num_samples=400, seed=0))
    return x[:200], x[200:], y[200:]


class Counting(nn.Module):
    """A model that counts the images it is given."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.images = 0

    def forward(self, x: Tensor) -> Tensor:
        self.images += len(x)
        return self.model(x)


# --- the crafting -----------------------------------------------------------------------------


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.3), ("l2", 3.0)])
def test_budget_and_passes_are_respected(classifier, norm, eps):
    crafting, _, _ = split()
    counted = Counting(classifier)
    crafter = UniversalPGD(norm=norm, epochs=2)
    found = crafter(counted, crafting, eps=eps)
    size = found.perturbation.abs().max() if norm == "linf" else found.perturbation.norm()
    assert float(size) <= eps * (1 + 1e-5)
    assert float(size) > 0.5 * eps  # it used its budget
    assert counted.images == found.passes == crafter.passes(len(crafting)) == 200 * 4


def test_one_perturbation_for_all_images_and_its_fooling_rate_recomputed(classifier):
    crafting, held_out, labels = split()
    found = QUICK(classifier, crafting, eps=0.3)
    assert found.perturbation.shape == crafting.shape[1:]  # one (C, H, W) tensor
    with torch.no_grad():
        clean = classifier(crafting).argmax(dim=1)
        perturbed = classifier((crafting + found.perturbation).clamp(0, 1)).argmax(dim=1)
        held_clean = classifier(held_out).argmax(dim=1)
        held_perturbed = classifier((held_out + found.perturbation).clamp(0, 1)).argmax(dim=1)
    assert found.fooling_rate == pytest.approx((perturbed != clean).float().mean().item())
    assert found.fooling_rate > 0.2
    score = score_universal(classifier, found.perturbation, held_out, labels)
    assert score.fooling_rate == pytest.approx((held_perturbed != held_clean).float().mean().item())
    assert score.accuracy == pytest.approx((held_perturbed == labels).float().mean().item())
    assert score.robust_accuracy <= min(score.accuracy, score.clean_accuracy)
    assert torch.equal(
        apply_universal(held_out, found.perturbation), (held_out + found.perturbation).clamp(0, 1)
    )


def test_deterministic_with_a_seed(classifier):
    crafting, _, _ = split()
    first = UniversalPGD(epochs=1, seed=3)(classifier, crafting, eps=0.2)
    again = UniversalPGD(epochs=1, seed=3)(classifier, crafting, eps=0.2)
    other = UniversalPGD(epochs=1, seed=4)(classifier, crafting, eps=0.2)
    assert torch.equal(first.perturbation, again.perturbation)
    assert not torch.equal(first.perturbation, other.perturbation)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda m, x: UniversalPGD()(m, x, eps=0.0), "eps must be > 0"),
        (lambda m, x: UniversalPGD()(m, x, eps=-0.1), "eps must be > 0"),
        (lambda m, x: UniversalPGD()(m, x, eps=1.5), "exceeds the pixel range"),
        (lambda m, x: UniversalPGD(norm="l1"), "unknown norm 'l1'"),
        (lambda m, x: UniversalPGD(epochs=0), "epochs must be >= 1"),
        (lambda m, x: UniversalPGD()(m, x[: MIN_IMAGES - 1], eps=0.1), "at least 10 crafting"),
        (lambda m, x: UniversalPGD()(m, x * 2, eps=0.1), "pixels outside [0, 1]"),
        (lambda m, x: UniversalPGD()(m, x[:, 0], eps=0.1), "shape (batch, channels"),
    ],
)
def test_bad_input_is_refused_in_one_line(classifier, make, fragment):
    crafting, _, _ = split()
    with pytest.raises(RobustkitError) as error:
        make(classifier, crafting)
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


# --- crafting images --------------------------------------------------------------------------


def test_without_a_training_split_crafting_images_are_the_ones_not_scored():
    whole = load_dataset("mnist-sample")
    scored = torch.arange(0, 1000, 2)
    crafting = crafting_images(whole, scored, num_samples=600, seed=0)
    picked = crafting.info.sample_indices()
    assert len(picked) == 500  # every image not scored, and no more
    assert not set(picked.tolist()) & set(scored.tolist())
    assert "no training split" in crafting.source
    again = crafting_images(whole, scored, num_samples=100, seed=0).info.sample_indices()
    assert torch.equal(
        again, crafting_images(whole, scored, num_samples=100, seed=0).info.sample_indices()
    )


def test_with_a_training_split_crafting_images_come_from_it(data_root):
    whole = load_dataset("mnist", root=data_root)
    crafting = crafting_images(whole, torch.arange(10), num_samples=50, seed=0, root=data_root)
    assert crafting.source == "mnist training split"
    assert len(crafting.info.dataset) == 50
    train = load_dataset("mnist", root=data_root, train=True)
    image, label = crafting.info.dataset[0]
    index = int(crafting.info.sample_indices()[0])
    assert torch.equal(image, train.dataset[index][0]) and label == train.dataset[index][1]


# --- in the audit -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audited(classifier) -> AuditResult:
    """zoo:mnist-cnn on 60 images with a deliberately weak attack (one PGD step of 1% of eps)
    and universal perturbations at L-inf 0.2 and 0.3, crafted on 200 other images."""
    crafting, _, _ = split()
    weak = PGDLinf(steps=1, rel_stepsize=0.01, random_start=False)
    spec = AuditSpec(
        dataset="mnist-sample",
        num_samples=60,
        attacks=(weak,),
        budgets=Budgets(linf=(0.2, 0.3)),
        noise_probes="off",
        batch_size=25,
    )
    job = UniversalJob(crafting, "200 test images", QUICK)
    return run_audit(spec, Threats(classifier), load_dataset("mnist-sample"), universal=job)


def test_audit_rows_score_every_image_and_the_worst_case_counts_them(audited, classifier):
    frame = audited.frame
    rows = frame[frame["attack"] == "universal-linf"]
    assert sorted(rows["eps"].unique()) == [0.2, 0.3]
    samples = frame[frame["attack"] == "pgd-linf"]["sample"]
    assert sorted(rows[rows["eps"] == 0.3]["sample"]) == sorted(samples.unique())
    # robust_correct recomputed from the saved perturbation
    x, y = data_tensors(load_dataset("mnist-sample"))
    at = rows[rows["eps"] == 0.3]
    delta = audited.universal["universal-linf-0.3"]
    with torch.no_grad():
        picked = torch.tensor(at["sample"].to_numpy())
        clean = classifier(x[picked]).argmax(dim=1)
        perturbed = classifier((x[picked] + delta).clamp(0, 1)).argmax(dim=1)
    expected = (clean == y[picked]) & (perturbed == y[picked])
    assert at["robust_correct"].tolist() == expected.tolist()
    broken_by_universal = at[~at["robust_correct"] & at["clean_correct"]]
    assert len(broken_by_universal) > 10  # the weak attack leaves these to the universal one
    worst = audited.worst_case()
    worst = worst[worst["eps"] == 0.3].set_index("sample")
    assert not worst.loc[broken_by_universal["sample"], "robust_correct"].any()
    assert "universal-linf" in set(worst["broken_by"])
    summary = audited.summary().set_index(["attack", "eps"])
    assert (
        summary.loc[(WORST_CASE, 0.3), "robust_accuracy"]
        <= summary.loc[("universal-linf", 0.3), "robust_accuracy"]
    )


def test_audit_record_nests_budgets_and_matches_the_rows(audited):
    record = audited.config["universal"]
    entries = {entry["eps"]: entry for entry in record["perturbations"]}
    assert entries[0.3]["crafting_fooling_rate"] >= entries[0.2]["crafting_fooling_rate"]
    rows = audited.frame[audited.frame["attack"] == "universal-linf"]
    for eps, entry in entries.items():
        at = rows[rows["eps"] == eps]
        assert entry["n"] == len(at) == 60
        assert entry["robust_accuracy"] == pytest.approx(at["robust_correct"].mean())
    assert record["crafting_images"] == 200


def test_audit_files_load_weights_only_and_show_in_the_report(audited, tmp_path):
    audited.save(tmp_path)
    saved = torch.load(tmp_path / "universal-linf-0.3.pt", weights_only=True)
    assert torch.equal(saved, audited.universal["universal-linf-0.3"])
    assert (tmp_path / "universal-linf-0.3.png").stat().st_size > 0
    results = pd.read_csv(tmp_path / "results.csv")
    assert {"universal-linf", WORST_CASE} <= set(results["attack"])
    loaded = AuditResult.load(tmp_path)
    assert torch.equal(
        loaded.universal["universal-linf-0.2"], audited.universal["universal-linf-0.2"]
    )
    html = write_report(loaded, tmp_path / "report.html").read_text()
    entry = audited.config["universal"]["perturbations"][-1]
    assert 'id="universal"' in html
    assert f"fools <strong>{entry['fooling_rate']:.1%}</strong> of 60 audited images" in html


def test_a_tampered_perturbation_file_is_refused_in_one_line(audited, tmp_path):
    audited.save(tmp_path)
    torch.save({"not": "a perturbation"}, tmp_path / "universal-linf-0.2.pt")
    with pytest.raises(RobustkitError, match=r"holds no \(C, H, W\) perturbation"):
        AuditResult.load(tmp_path)


def test_universal_refuses_an_audit_without_l_inf_or_l2_budgets(classifier):
    crafting, _, _ = split()
    spec = AuditSpec(
        dataset="mnist-sample",
        num_samples=10,
        attacks=("gaussian-noise",),
        budgets=Budgets(linf=(), gaussian=(0.1,)),
        noise_probes="off",
    )
    job = UniversalJob(crafting, "test images")
    with pytest.raises(RobustkitError, match="L-inf or L2 budgets"):
        run_audit(spec, Threats(classifier), load_dataset("mnist-sample"), universal=job)


# --- in the transfer matrix -------------------------------------------------------------------


def test_transfer_universal_rows_score_each_target(classifier):
    crafting, held_out, labels = split()
    other = load_model("zoo:mnist-robust", device="cpu")
    result = transfer_matrix(
        {"cnn": classifier},
        {"cnn": classifier, "robust": other},
        (held_out, labels),
        attack="fgsm",
        eps=0.3,
        universal=UniversalJob(crafting, "200 test images", QUICK),
    )
    assert list(result.pivot().index) == ["cnn", "universal:cnn"]
    delta = result.perturbations["cnn"]
    assert float(delta.abs().max()) <= 0.3 + 1e-6
    table = result.universal.set_index("target")
    for name, model in (("cnn", classifier), ("robust", other)):
        score = score_universal(model, delta, held_out, labels)
        assert table.loc[name, "fooling_rate"] == pytest.approx(score.fooling_rate)
        assert table.loc[name, "accuracy"] == pytest.approx(score.accuracy)
    assert table.loc["cnn", "fooling_rate"] > table.loc["robust", "fooling_rate"]
    unconditioned = result.frame[
        (result.frame["source"] == "universal:cnn") & ~result.frame["conditioned"]
    ]
    misclassified = unconditioned.set_index("target")["success_rate"]
    assert misclassified["cnn"] == pytest.approx(1 - table.loc["cnn", "accuracy"])


def test_transfer_universal_needs_an_l_inf_or_l2_attack(classifier):
    crafting, held_out, labels = split()
    with pytest.raises(RobustkitError, match="L-inf or L2 and apgd-ce-l1 is l1"):
        transfer_matrix(
            [classifier],
            [classifier],
            (held_out, labels),
            attack="apgd-ce-l1",
            eps=10.0,
            universal=UniversalJob(crafting, "test images"),
        )


# --- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--universal-samples", "50"], ["--universal-samples applies to --universal"]),
        (["--universal", "--universal-samples", "3"], ["too few", "at least 10"]),
        (["--universal", "--universal-samples", "0"], ["--universal-samples must be >= 1"]),
        (["--universal", "--defense", "manifold:zoo:mnist-dcgan"], ["plain model"]),
        (
            ["--universal", "--num-samples", "0", "--attacks", "fgsm"],
            ["no training split", "every image of it is scored"],
        ),
    ],
)
def test_audit_cli_bad_universal_input_gives_one_line(tmp_path, args, fragments, one_line_error):
    base = ["audit", "--out", str(tmp_path), "--noise-probes", "off"]
    one_line_error(runner.invoke(app, [*base, *args]), *fragments)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--universal-samples", "50"], ["--universal-samples applies to --universal"]),
        (["--universal", "--attack", "apgd-ce-l1"], ["L-inf or L2"]),
    ],
)
def test_transfer_cli_bad_universal_input_gives_one_line(tmp_path, args, fragments, one_line_error):
    base = ["transfer", "--dataset", "mnist-sample", "--num-samples", "20", "--out", str(tmp_path)]
    one_line_error(runner.invoke(app, [*base, *args]), *fragments)


def test_audit_cli_writes_universal_rows_files_and_lines(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "audit",
            "--attacks",
            "fgsm",
            "--eps",
            "0.3",
            "--num-samples",
            "20",
            "--universal",
            "--universal-samples",
            "100",
            "--noise-probes",
            "off",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "universal-linf eps=0.3: fools" in result.stdout
    assert "100 images: mnist-sample images outside the scored ones" in result.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["universal"]["perturbations"][0]["file"] == "universal-linf-0.3.pt"
    assert torch.load(out / "universal-linf-0.3.pt", weights_only=True).shape == (1, 28, 28)
    assert "universal-linf" in set(pd.read_csv(out / "results.csv")["attack"])
