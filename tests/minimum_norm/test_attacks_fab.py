"""FAB-T (fab-t, fab-t-l2): exact radii on a linear model, the projection against the reference,
radius/success/eps consistency, per-target early stop, and a cross-check against torchattacks."""

from __future__ import annotations

import pytest
import torch
import torchattacks
from cases import LARGE_EPS, closed_form_radius, radius_of
from torchattacks.attacks.fab import projection_l2, projection_linf

from robustkit.attacks import FABTargetedL2, FABTargetedLinf, create_attack
from robustkit.attacks.base import perturbation_norm
from robustkit.data import load_dataset
from robustkit.errors import RobustkitError
from robustkit.models import load_zoo_model


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_radius_matches_the_closed_form_on_a_linear_model(linear, norm):
    model, x, y = linear
    expected = closed_form_radius(model, x, y, norm)
    attack = FABTargetedLinf(steps=30) if norm == "linf" else FABTargetedL2(steps=30)
    result = attack(model, x, y, eps=LARGE_EPS[norm])
    assert result.success.all()
    # no adversarial can beat the true minimum; FAB must get within 5% of it
    assert (radius_of(result) >= expected * (1 - 1e-4)).all()
    assert (radius_of(result) <= expected * 1.05).all()
    measured = perturbation_norm(result.x_adv - x, norm)
    assert torch.allclose(measured, radius_of(result))


@pytest.mark.parametrize(("ours", "reference"), [("linf", projection_linf), ("l2", projection_l2)])
def test_projection_onto_hyperplane_and_box_is_the_minimal_one(ours, reference):
    attack = FABTargetedLinf() if ours == "linf" else FABTargetedL2()
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(300, 40, generator=gen)
    weight = torch.randn(300, 40, generator=gen) * (torch.rand(300, 40, generator=gen) > 0.2)
    target = (weight * torch.rand(300, 40, generator=gen)).sum(dim=1) * 2.0
    step = attack._project(points, weight, target - (weight * points).sum(dim=1))
    moved = points + step
    assert moved.min() >= -1e-6 and moved.max() <= 1 + 1e-6
    theirs = reference(points, weight, target)
    reached = ((weight * moved).sum(dim=1) - target).abs() < 1e-4
    assert reached.float().mean() > 0.9  # most instances are feasible within the box
    p = float("inf") if ours == "linf" else 2.0
    assert torch.allclose(step.norm(p=p, dim=1), theirs.norm(p=p, dim=1), atol=1e-5)


@pytest.mark.parametrize("name", ["fab-t", "fab-t-l2"])
def test_success_is_radius_within_eps_and_a_larger_eps_never_finds_less(mlp, name):
    model, x, y = mlp
    grid = [0.03, 0.1, 0.3] if name == "fab-t" else [0.3, 1.0, 3.0]
    previous_success = torch.zeros(len(x), dtype=torch.bool)
    previous_radius = torch.full((len(x),), torch.inf)
    for eps in grid:
        result = create_attack(name, steps=15)(model, x, y, eps=eps)
        assert torch.equal(result.success, radius_of(result) <= eps)
        assert torch.equal(result.x_adv[~result.success], x[~result.success])
        assert (previous_success <= result.success).all()  # broken at a smaller eps stays broken
        one_target = create_attack(name, steps=15, num_targets=1)(model, x, y, eps=eps)
        # with a single target run the search does not depend on eps at all
        assert (radius_of(one_target) <= previous_radius).all()
        previous_success, previous_radius = result.success, radius_of(one_target)
    assert previous_success.float().mean() > 0.5


def test_later_target_runs_skip_points_already_broken(linear):
    model, x, y = linear
    model.seen = 0
    result = FABTargetedLinf(steps=10, num_targets=3)(model, x, y, eps=0.5)
    assert result.success.all()
    # clean pass, one run of 10 steps (a gradient and a check per step), final scoring: the
    # second and third target runs found nothing left to attack
    assert model.seen == len(x) * (1 + 2 * 10 + 1)


def test_misclassified_inputs_get_radius_zero_without_a_run(linear):
    model, x, y = linear
    wrong = (y + 1) % 4
    model.seen = 0
    result = FABTargetedLinf()(model, x, wrong, eps=0.1)
    assert result.success.all()
    assert (radius_of(result) == 0).all()
    assert torch.equal(result.x_adv, x)
    assert model.seen == 2 * len(x)


def test_given_targets_are_reached(mlp):
    model, x, y = mlp
    targets = (y + 2) % 5
    result = FABTargetedL2(steps=50)(model, x, y, eps=10.0, targets=targets)
    assert torch.equal(result.success, result.adv_pred == targets)
    assert result.success.float().mean() >= 0.9


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(RobustkitError, match="num_targets"):
        FABTargetedLinf(num_targets=0)
    with pytest.raises(RobustkitError, match="beta"):
        FABTargetedLinf(beta=1.0)


@pytest.mark.parametrize(
    ("name", "norm", "eps"), [("fab-t", "Linf", 0.05), ("fab-t-l2", "L2", 0.8)]
)
def test_no_weaker_than_torchattacks_fab(trained, name, norm, eps):
    model, x, y = trained
    ours = create_attack(name, steps=20)(model, x, y, eps=eps)
    theirs = torchattacks.FAB(
        model, norm=norm, eps=eps, steps=20, n_restarts=1, multi_targeted=True, n_classes=10
    )(x, y)
    delta = (theirs - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "Linf" else delta.norm(dim=1)
    with torch.no_grad():
        broken = (model(theirs).argmax(dim=1) != y) & (size <= eps + 1e-6)
    ours_robust = 1 - ours.success.float().mean().item()
    theirs_robust = 1 - broken.float().mean().item()
    assert 0.1 < theirs_robust < 0.9  # a budget that separates the attacks
    # the same deterministic algorithm: allow one image (of 40) for float differences
    assert ours_robust <= theirs_robust + 1 / len(x)


@pytest.mark.slow
def test_fab_t_on_the_bundled_cnn_matches_torchattacks():
    model = load_zoo_model("mnist-cnn", device="cpu")
    dataset = load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(30)])
    y = torch.tensor([int(dataset[i][1]) for i in range(30)])
    eps = 0.12
    ours = create_attack("fab-t", steps=30)(model, x, y, eps=eps)
    theirs = torchattacks.FAB(
        model, norm="Linf", eps=eps, steps=30, n_restarts=1, multi_targeted=True, n_classes=10
    )(x, y)
    with torch.no_grad():
        broken = (model(theirs).argmax(dim=1) != y) & (
            (theirs - x).flatten(1).abs().amax(dim=1) <= eps + 1e-6
        )
    assert 0.2 < broken.float().mean() < 0.8
    assert ours.success.sum() >= broken.sum() - 1
