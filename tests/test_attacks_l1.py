"""The L1 ball: the exact projection onto ball and box, FAB's L1 boundary projection against
AutoAttack's (as torchattacks ports it), minimum-norm radii against the closed form on a linear
model, and cross-checks against foolbox's L1 attacks (torchattacks' FAB fails under L1, so
FAB-T-L1 meets AutoAttack's FAB in benchmarks/fab_l1_vs_autoattack.py instead)."""

from __future__ import annotations

import foolbox as fb
import pytest
import torch
from torch import Tensor, nn
from torchattacks.attacks.fab import projection_l1

from robustkit.attacks import FABTargetedL1, create_attack
from robustkit.attacks.apgd_l1 import large_reps_stages
from robustkit.attacks.l1_ball import (
    l1_ball_project,
    l1_box_project,
    l1_sign_direction,
    l1_sparsify,
)
from robustkit.data import load_dataset
from robustkit.models import load_zoo_model

NUM_IMAGES = 32
STEPS = 20  # both sides of every cross-check
EPS = 10.0  # zoo:mnist-robust keeps about half its points at this L1 budget
TOLERANCE = 0.02  # robust accuracy: ours may exceed a peer's by at most 2 points


def sorted_threshold(y: Tensor, eps: float) -> Tensor:
    """Duchi et al.'s projection onto the L1 ball (no box), from the sorted magnitudes."""
    size = y.abs().sort(dim=1, descending=True).values
    sums = size.cumsum(dim=1)
    ranks = torch.arange(1, y.shape[1] + 1, dtype=y.dtype)
    last = ((size - (sums - eps) / ranks) > 0).sum(dim=1, keepdim=True)
    theta = (sums.gather(1, last - 1) - eps) / last
    return y.sign() * (y.abs() - theta).clamp_min(0)


def bisected(y: Tensor, room: Tensor, eps: float) -> Tensor:
    """The ball-and-box projection by bisection on the threshold, in float64."""
    y, room = y.double(), room.double()
    low = torch.zeros(len(y), 1, dtype=torch.float64)
    high = y.abs().amax(dim=1, keepdim=True)

    def norm(lam: Tensor) -> Tensor:
        return torch.minimum((y.abs() - lam).clamp_min(0), room).sum(dim=1, keepdim=True)

    inside = norm(low) <= eps
    for _ in range(200):
        mid = (low + high) / 2
        over = norm(mid) > eps
        low, high = torch.where(over, mid, low), torch.where(over, high, mid)
    lam = torch.where(inside, 0.0, high)
    return y.sign() * torch.minimum((y.abs() - lam).clamp_min(0), room)


def test_projection_without_the_box_is_the_sorted_threshold():
    torch.manual_seed(0)
    x0 = torch.full((8, 1, 10, 10), 0.5)
    y = 0.45 * torch.tanh(torch.randn(8, 1, 10, 10))  # every coordinate within its box room
    projected = l1_box_project(x0 + y, x0, 3.0) - x0
    expected = sorted_threshold(y.flatten(1).double(), 3.0).float()
    assert torch.allclose(projected.flatten(1), expected, atol=1e-5)
    assert torch.allclose(l1_ball_project(y, torch.full((8,), 3.0)).flatten(1), expected, atol=1e-5)


def test_projection_is_feasible_optimal_and_idempotent():
    torch.manual_seed(1)
    x0 = (torch.rand(16, 1, 12, 12) > 0.6) * torch.rand(16, 1, 12, 12)  # sparse, digit-like
    x = x0 + torch.randn_like(x0)
    eps = torch.linspace(0.5, 20.0, 16)  # one radius per sample, some with the box binding
    projected = l1_box_project(x, x0, eps)
    delta = (projected - x0).flatten(1)
    assert projected.min() >= 0 and projected.max() <= 1
    assert (delta.abs().sum(dim=1) <= eps * (1 + 1e-6)).all()
    flat = (x - x0).flatten(1)
    room = torch.where(flat > 0, 1 - x0.flatten(1), x0.flatten(1))
    for i in range(16):
        exact = bisected(flat[i : i + 1], room[i : i + 1], float(eps[i]))
        assert torch.allclose(delta[i : i + 1].double(), exact, atol=1e-5)
    # optimality: no feasible point lies on the far side of the projection (the
    # variational inequality <x - p, z - p> <= 0 of a projection onto a convex set)
    for _ in range(5):
        other = l1_box_project(x0 + 3 * torch.randn_like(x0), x0, eps)
        inner = ((x - projected) * (other - projected)).flatten(1).sum(dim=1)
        assert (inner <= 1e-4).all()
    assert torch.allclose(l1_box_project(projected, x0, eps), projected, atol=1e-6)


def test_sparse_step_moves_the_largest_coordinates_by_unit_l1():
    grad = torch.tensor([[[[0.1, -3.0, 2.0, 0.5]]]])
    step = l1_sign_direction(l1_sparsify(grad, torch.tensor([0.5])))
    assert torch.equal(step.flatten(), torch.tensor([0.0, -0.5, 0.5, 0.0]))


def test_large_reps_splits_the_steps_as_autoattack():
    assert large_reps_stages(100) == [(3.0, 30), (2.0, 30), (1.0, 40)]
    assert large_reps_stages(10) == [(3.0, 3), (2.0, 3), (1.0, 4)]
    assert large_reps_stages(2) == [(1.0, 2)]


class Linear(nn.Module):
    """A binary linear classifier on 1 x 6 x 6 inputs (one boundary: FAB-T's first target, and
    its only one, is the nearest class)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(36, 2)
        with torch.no_grad():  # the boundary through the mid-grey image, near every input
            self.fc.bias -= self.fc.weight.sum(dim=1) * 0.5

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.flatten(1))


def closed_form_l1(model: Linear, x: Tensor, y: Tensor) -> Tensor:
    """The smallest L1 distance to the other class: (f_y - f_j) / ||w_y - w_j||_inf (one
    coordinate moves, which the box allows when it needs less than its room)."""
    with torch.no_grad():
        logits = model(x)
    weight = model.fc.weight
    rows = torch.arange(len(y))
    margins = logits[rows, y][:, None] - logits
    spreads = (weight[y][:, None, :] - weight[None]).abs().amax(dim=2)
    distances = margins / spreads
    distances[rows, y] = torch.inf
    return distances.min(dim=1).values


@pytest.mark.parametrize(
    ("change", "expected"),
    [(2.25, [1.0, 0.0, 0.0, 0.0, 0.0, 0.5]), (100.0, [1.0, 0.0, 0.0, 0.0, 0.0, 1.0])],
)
def test_fab_l1_projection_leaves_negligible_weights_in_place(change, expected):
    """Within reach, the largest weights fill first; out of reach, every coordinate that helps
    goes to the box, except those of negligible weight (1e-9, as a ReLU network's background
    pixels carry): moving each across the box adds 1 to the L1 norm for nothing."""
    points = torch.zeros(1, 6)
    weight = torch.tensor([[2.0, -1.0, 1e-9, 3e-9, 0.0, 0.5]])
    step = FABTargetedL1()._project(points, weight, torch.tensor([change]))
    assert torch.allclose(step, torch.tensor([expected]))


def test_fab_l1_projection_matches_autoattack_on_mnist_like_rows():
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(200, 784, generator=gen)
    points[points < 0.6] = 0.0  # most pixels at the box, as in MNIST
    points[points > 0.95] = 1.0
    weight = torch.randn(200, 784, generator=gen)
    weight[torch.rand(200, 784, generator=gen) < 0.02] *= 1e-10
    # from well within the box's reach to far beyond it
    change = torch.randn(200, generator=gen) * weight.abs().sum(dim=1) * torch.linspace(0, 0.5, 200)
    target = (weight * points).sum(dim=1) + change
    step = FABTargetedL1()._project(points, weight, change)
    assert torch.allclose(step, projection_l1(points, weight, target), atol=1e-3)


@pytest.mark.parametrize(("name", "tolerance"), [("fab-t-l1", 0.01), ("fmn-l1", 0.01)])
def test_minimum_norm_radius_matches_the_closed_form(name, tolerance):
    model = Linear()
    x = 0.45 + 0.1 * torch.rand(32, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    exact = closed_form_l1(model, x, y)
    assert (exact < 0.45).all()  # every coordinate has room 0.45 or more: the form holds
    torch.manual_seed(0)
    radius = create_attack(name)(model, x, y, eps=10.0).radius
    assert radius is not None
    assert (radius >= exact * (1 - 1e-4)).all()  # nothing beats the true minimum
    assert (radius <= exact * (1 + tolerance)).all()


@pytest.fixture(scope="module")
def robust() -> nn.Module:
    torch.manual_seed(0)
    return load_zoo_model("mnist-robust", device="cpu")


@pytest.fixture(scope="module")
def batch(robust: nn.Module) -> tuple[Tensor, Tensor]:
    """The first NUM_IMAGES images of the bundled sample the robust model gets right."""
    dataset = load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(len(dataset))])
    y = torch.tensor([int(dataset[i][1]) for i in range(len(dataset))])
    with torch.no_grad():
        correct = robust(x).argmax(dim=1) == y
    return x[correct][:NUM_IMAGES].contiguous(), y[correct][:NUM_IMAGES].contiguous()


def robust_accuracy(model: nn.Module, x_adv: Tensor, x: Tensor, y: Tensor) -> float:
    """Share still classified right, counting only adversarials within the L1 budget."""
    within = (x_adv - x).flatten(1).abs().sum(dim=1) <= EPS * (1 + 1e-5)
    with torch.no_grad():
        correct = model(x_adv).argmax(dim=1) == y
    return (correct | ~within).float().mean().item()


def ours(name: str, model: nn.Module, x: Tensor, y: Tensor, **kwargs: object) -> float:
    torch.manual_seed(0)
    return robust_accuracy(model, create_attack(name, **kwargs)(model, x, y, eps=EPS).x_adv, x, y)


@pytest.mark.slow
def test_apgd_l1_no_weaker_than_foolbox_sparse_l1_descent(robust, batch):
    x, y = batch
    theirs = fb.attacks.SparseL1DescentAttack(steps=STEPS, random_start=True)
    _, clipped, _ = theirs(fb.PyTorchModel(robust, bounds=(0, 1)), x, y, epsilons=EPS)
    mine = ours("apgd-ce-l1", robust, x, y, steps=STEPS)
    assert mine <= robust_accuracy(robust, clipped, x, y) + TOLERANCE


@pytest.mark.slow
def test_fmn_l1_no_weaker_than_foolbox(robust, batch):
    x, y = batch
    theirs = fb.attacks.L1FMNAttack(steps=STEPS)
    _, clipped, _ = theirs(fb.PyTorchModel(robust, bounds=(0, 1)), x, y, epsilons=EPS)
    mine = ours("fmn-l1", robust, x, y, steps=STEPS)
    assert mine <= robust_accuracy(robust, clipped, x, y) + TOLERANCE


@pytest.mark.slow
def test_audit_runs_the_suite_under_l1_budgets_nested(tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from robustkit.cli import app

    args = ["audit", "--suite", "quick", "--attacks", "", "--eps", "none", "--eps-l1", "5,15"]
    args += ["--num-samples", "8", "--steps", "5", "--no-noise-probes", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "results.csv")
    assert set(rows["norm"]) == {"l1"}
    assert {"apgd-ce-l1", "apgd-t-l1"} <= set(rows["attack"])
    summary = pd.read_csv(tmp_path / "summary.csv")
    worst = summary[summary["attack"] == "worst-case"].sort_values("eps")
    assert list(worst["eps"]) == [5.0, 15.0]
    assert worst["robust_accuracy"].is_monotonic_decreasing
    assert "L1 eps 15" in (tmp_path / "report.html").read_text()
