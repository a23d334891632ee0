"""Transfer attacks (robustkit/transfer): the matrix, ensemble sources, sklearn targets, CLI."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from typer.testing import CliRunner

from robustkit.attacks import FGSM, MIFGSM
from robustkit.auditing.inputs import build_attack
from robustkit.cli import app
from robustkit.data import load_dataset
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, load_zoo_model
from robustkit.models.ensemble import Ensemble
from robustkit.transfer import COLUMNS, transfer_matrix
from robustkit.transfer.matrix import data_tensors
from robustkit.transfer.result import pivot, read_frames
from robustkit.transfer.sklearn_targets import KINDS, train_sklearn_model

runner = CliRunner()
TRAIN_IMAGES = 4000
TEST_IMAGES = 200


@functools.cache
def mnist(root: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Seeded MNIST train and test subsets as tensors."""
    train = load_dataset("mnist", root=root, train=True, num_samples=TRAIN_IMAGES, seed=0)
    test = load_dataset("mnist", root=root, num_samples=TEST_IMAGES, seed=0)
    return (*data_tensors(train), *data_tensors(test))


@functools.cache
def mlp(root: str, seed: int) -> RobustModel:
    """A 784-64-10 MLP trained for two epochs on the train subset (a second or two)."""
    x, y, _, _ = mnist(root)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(2):
        for idx in torch.randperm(len(x)).split(50):
            optimiser.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            optimiser.step()
    return RobustModel(
        net, input_shape=(1, 28, 28), num_classes=10, name=f"mlp-{seed}", device="cpu"
    )


@functools.cache
def sklearn_model(root: str, kind: str) -> RobustModel:
    x, y, _, _ = mnist(root)
    return train_sklearn_model(kind, x[:2000], y[:2000], seed=0)


def cell(result, source: str, target: str, conditioned: bool = True) -> float:
    frame = result.frame
    row = frame[
        (frame["source"] == source)
        & (frame["target"] == target)
        & (frame["conditioned"] == conditioned)
    ]
    return float(row["success_rate"].iloc[0])


def bundled_sample(n: int) -> tuple[Tensor, Tensor]:
    return data_tensors(load_dataset("mnist-sample", num_samples=n, seed=0))


# --- the matrix -----------------------------------------------------------------------------


def test_diagonal_equals_white_box_success_of_the_same_attack():
    model = load_zoo_model("mnist-cnn", device="cpu")
    x, y = bundled_sample(100)
    attack = build_attack("pgd-linf", steps=5, early_stop=False)
    result = transfer_matrix([model], [model], (x, y), attack=attack, eps=0.2, seed=3)

    torch.manual_seed(3)
    direct = attack(model, x, y, eps=0.2)
    with torch.no_grad():
        correct = model(x).argmax(dim=1) == y
    assert cell(result, "mnist-cnn", "mnist-cnn") == direct.success[correct].float().mean().item()
    assert list(result.frame.columns) == COLUMNS
    assert len(result.frame) == 2  # one conditioned and one unconditioned row per cell
    unconditioned = result.frame[~result.frame["conditioned"]].iloc[0]
    assert unconditioned["n"] == 100
    assert unconditioned["success_rate"] == pytest.approx(
        (direct.adv_pred != y).float().mean().item()
    )


def test_each_source_is_attacked_once_and_each_target_evaluated_once(monkeypatch):
    model = load_zoo_model("mnist-cnn", device="cpu")
    x, y = bundled_sample(40)
    calls: list[int] = []
    attack = FGSM()
    monkeypatch.setattr(type(attack), "_run", counting(type(attack)._run, calls))
    sources = {"a": model, "b": Ensemble([model], mode="logits")}
    targets = {"a": model, "c": load_zoo_model("mnist-cnn", device="cpu")}
    result = transfer_matrix(sources, targets, (x, y), attack=attack, eps=0.1, batch_size=40)
    assert len(calls) == 2
    assert result.pivot().shape == (2, 2)
    assert list(result.pivot().index) == ["a", "b"]


def counting(run, calls):
    def wrapped(self, *args, **kwargs):
        calls.append(1)
        return run(self, *args, **kwargs)

    return wrapped


def test_same_architecture_from_different_seeds_transfers_far_better_than_chance(data_root):
    _, _, x, y = mnist(str(data_root))
    a, b = mlp(str(data_root), 1), mlp(str(data_root), 2)
    result = transfer_matrix([a], [a, b], (x, y), attack=MIFGSM(), eps=0.2)
    transferred = cell(result, "mlp-1", "mlp-2")
    # chance: random sign noise of the same budget
    torch.manual_seed(0)
    noisy = (x + 0.2 * torch.randn_like(x).sign()).clamp(0, 1)
    with torch.no_grad():
        correct = (b(x).argmax(dim=1) == y) & (a(x).argmax(dim=1) == y)
        noise_rate = (b(noisy).argmax(dim=1) != y)[correct].float().mean().item()
    assert cell(result, "mlp-1", "mlp-1") > 0.95
    assert transferred > 0.5
    assert transferred > 3 * noise_rate


def test_ensemble_source_transfers_at_least_as_well_as_its_weakest_member(data_root):
    _, _, x, y = mnist(str(data_root))
    a, b, held_out = (mlp(str(data_root), seed) for seed in (1, 2, 3))
    sources = {
        "a": a,
        "b": b,
        "ens-loss": Ensemble([a, b], mode="loss"),
        "ens-logits": Ensemble([a, b], mode="logits"),
    }
    result = transfer_matrix(sources, {"held-out": held_out}, (x, y), attack=MIFGSM(), eps=0.15)
    weakest = min(cell(result, "a", "held-out"), cell(result, "b", "held-out"))
    assert cell(result, "ens-loss", "held-out") >= weakest
    assert cell(result, "ens-logits", "held-out") >= weakest


def test_heatmap_and_tables_are_written(tmp_path):
    model = load_zoo_model("mnist-cnn", device="cpu")
    result = transfer_matrix([model], [model], bundled_sample(20), attack=FGSM(), eps=0.1)
    result.save(tmp_path)
    for suffix in ("csv", "pivot.csv", "svg", "png", "json"):
        assert (tmp_path / f"transfer_matrix.{suffix}").stat().st_size > 0
    pivot = pd.read_csv(tmp_path / "transfer_matrix.pivot.csv", index_col=0)
    assert pivot.loc["mnist-cnn", "mnist-cnn"] == cell(result, "mnist-cnn", "mnist-cnn")
    read = read_frames([tmp_path, tmp_path / "elsewhere"])  # what the report reads
    pd.testing.assert_frame_equal(read, result.frame)


def test_pivot_keeps_the_order_of_the_frame_and_averages_repeated_cells(tmp_path):
    rows = [
        ("b", "y", 0.2, True),
        ("b", "x", 0.4, True),
        ("a", "y", 0.6, True),
        ("a", "x", 1.0, True),
        ("a", "x", 0.8, True),
        ("a", "x", 0.0, False),
    ]
    frame = pd.DataFrame(
        [(s, t, 0.3, "pgd-linf", 10, rate, c) for s, t, rate, c in rows], columns=COLUMNS
    )
    table = pivot(frame)
    assert list(table.index) == ["b", "a"] and list(table.columns) == ["y", "x"]
    assert table.loc["a", "x"] == pytest.approx(0.9)
    assert pivot(frame, conditioned=False).loc["a", "x"] == 0.0
    frame.drop(columns="n").to_csv(tmp_path / "transfer_matrix.csv", index=False)
    with pytest.raises(RobustkitError, match="lacks the columns n: a transfer matrix needs source"):
        read_frames([tmp_path])


def test_mismatched_input_shapes_and_bad_sources_are_refused():
    model = load_zoo_model("mnist-cnn", device="cpu")
    wide = RobustModel(nn.Flatten(), input_shape=(1, 32, 32), name="wide", device="cpu")
    with pytest.raises(RobustkitError, match=r"takes inputs of shape \(1, 32, 32\)"):
        transfer_matrix([model], [wide], bundled_sample(4), eps=0.1)
    other = load_zoo_model("mnist-cnn", device="cpu")
    with pytest.raises(RobustkitError, match="different models"):
        transfer_matrix({"m": model}, {"m": other}, bundled_sample(4), eps=0.1)
    with pytest.raises(RobustkitError, match="both called"):
        transfer_matrix([model, other], [model], bundled_sample(4), eps=0.1)


# --- scikit-learn models --------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_sklearn_targets_load_and_score(data_root, kind):
    _, _, x, y = mnist(str(data_root))
    model = sklearn_model(str(data_root), kind)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (len(x), 10) and torch.isfinite(logits).all()
    floor = 0.6 if kind == "tree" else 0.8  # a single tree on 2,000 images: about 70%
    assert (logits.argmax(dim=1) == y).float().mean() > floor
    assert model.name == f"sklearn:{kind}"


@pytest.mark.parametrize("kind", ["logreg", "svm"])
def test_sklearn_gradients_from_art_match_the_linear_model(data_root, kind):
    _, _, x, y = mnist(str(data_root))
    model = sklearn_model(str(data_root), kind)
    inner: Any = model.model.estimator.model  # type: ignore[union-attr]
    weight = torch.tensor(inner.coef_, dtype=torch.float32)
    bias = torch.tensor(inner.intercept_, dtype=torch.float32)
    x1 = x[:8].clone().requires_grad_(True)
    (got,) = torch.autograd.grad(F.cross_entropy(model(x1), y[:8]), x1)
    x2 = x[:8].clone().requires_grad_(True)
    scores = x2.flatten(1) @ weight.T + bias
    scores = scores.log_softmax(dim=1) if kind == "logreg" else scores
    (expected,) = torch.autograd.grad(F.cross_entropy(scores, y[:8]), x2)
    assert torch.allclose(got, expected, atol=1e-6)


def test_non_differentiable_sklearn_models_are_targets_only(data_root):
    _, _, x, y = mnist(str(data_root))
    tree = sklearn_model(str(data_root), "tree")
    with pytest.raises(RobustkitError, match="sklearn:tree has no gradients"):
        transfer_matrix([tree], [tree], (x[:10], y[:10]), eps=0.1)
    logreg = sklearn_model(str(data_root), "logreg")
    result = transfer_matrix([logreg], [logreg, tree], (x[:50], y[:50]), attack=FGSM(), eps=0.2)
    assert cell(result, "sklearn:logreg", "sklearn:logreg") > 0.5
    with pytest.raises(RobustkitError, match="unknown scikit-learn model 'forest'"):
        train_sklearn_model("forest", x[:10], y[:10])


# --- CLI ------------------------------------------------------------------------------------


def write_factory(folder: Path, shape: tuple[int, int, int] = (1, 28, 28)) -> str:
    """A file.py:factory spec for an untrained linear model taking ``shape`` inputs."""
    path = folder / "nets.py"
    pixels = shape[0] * shape[1] * shape[2]
    path.write_text(
        "from torch import nn\n"
        "from robustkit.models import RobustModel\n"
        "def make():\n"
        f"    net = nn.Sequential(nn.Flatten(), nn.Linear({pixels}, 10))\n"
        f"    return RobustModel(net, input_shape={shape!r}, num_classes=10)\n"
    )
    return f"{path}:make"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--models", "zoo:mnist-cn"], ["unknown zoo model 'mnist-cn'", "mnist-cnn"]),
        (["--models", "resnet18"], ["unrecognised model spec"]),
        (["--attack", "pgd-lnf"], ["did you mean pgd-linf"]),
        (["--attack", "foolbox:LinfPDG"], ["did you mean foolbox:LinfPGD"]),
        (["--sklearn", "forest"], ["unknown --sklearn model 'forest'"]),
        (["--sklearn", "knn"], ["mnist-sample has no training split"]),
        (["--ensemble"], ["--ensemble needs at least two --models"]),
    ],
)
def test_transfer_cli_bad_input_gives_one_line(tmp_path, args, fragments, one_line_error):
    base = ["transfer", "--dataset", "mnist-sample", "--num-samples", "10", "--out", str(tmp_path)]
    one_line_error(runner.invoke(app, [*base, *args]), *fragments)


def test_transfer_cli_mismatched_input_shape_gives_one_line(tmp_path, one_line_error):
    spec = write_factory(tmp_path, shape=(1, 32, 32))
    result = runner.invoke(
        app,
        [
            "transfer",
            "--models",
            f"zoo:mnist-cnn,{spec}",
            "--dataset",
            "mnist-sample",
            "--num-samples",
            "10",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    one_line_error(result, "takes inputs of shape (1, 32, 32)", "(1, 28, 28)")


@pytest.mark.slow
def test_transfer_cli_end_to_end(tmp_path, data_root):
    spec = write_factory(tmp_path)
    result = runner.invoke(
        app,
        [
            "transfer",
            "--models",
            f"zoo:mnist-cnn,{spec}",
            "--sklearn",
            "logreg,knn",
            "--ensemble",
            "--attack",
            "fgsm",
            "--eps",
            "0.2",
            "--dataset",
            "mnist",
            "--data-root",
            str(data_root),
            "--num-samples",
            "30",
            "--train-samples",
            "1000",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "out" / "transfer_matrix.csv")
    assert list(frame.columns) == COLUMNS
    pivot = pd.read_csv(tmp_path / "out" / "transfer_matrix.pivot.csv", index_col=0)
    assert list(pivot.columns) == ["zoo:mnist-cnn", spec, "sklearn:logreg", "sklearn:knn"]
    assert list(pivot.index) == [
        "zoo:mnist-cnn",
        spec,
        "sklearn:logreg",
        f"ensemble(zoo:mnist-cnn+{spec})",
    ]
    assert (tmp_path / "out" / "transfer_matrix.png").stat().st_size > 0
    assert (tmp_path / "out" / "transfer_matrix.svg").stat().st_size > 0
    config = json.loads((tmp_path / "out" / "transfer_matrix.json").read_text())
    drawn = torch.randperm(10_000, generator=torch.Generator().manual_seed(0))[:30]
    assert config["indices"] == drawn.tolist()  # the MNIST test images the matrix was measured on
