"""FMN (fmn, fmn-l2): exact radii on a linear model, radius/success/eps consistency, early exit of
misclassified inputs, and a cross-check of radii against foolbox's FMN."""

from __future__ import annotations

import foolbox as fb
import pytest
import torch
from cases import LARGE_EPS, closed_form_radius, radius_of
from torch import Tensor, nn

from robustkit.attacks import FMNL2, FMNLinf, create_attack
from robustkit.attacks.base import perturbation_norm
from robustkit.data import load_dataset
from robustkit.errors import RobustkitError
from robustkit.models import load_zoo_model

FOOLBOX = {"linf": fb.attacks.LInfFMNAttack, "l2": fb.attacks.L2FMNAttack}


def foolbox_radius(model: nn.Module, x: Tensor, y: Tensor, norm: str, steps: int) -> Tensor:
    """foolbox's FMN (its defaults but ``steps``): the norm of each adversarial, inf if none."""
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    _, adv, _ = FOOLBOX[norm](steps=steps)(fmodel, x, y, epsilons=None)
    with torch.no_grad():
        fooled = model(adv).argmax(dim=1) != y
    return torch.where(fooled, perturbation_norm(adv - x, norm), torch.inf)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_radius_matches_the_closed_form_on_a_linear_model(linear, norm):
    model, x, y = linear
    expected = closed_form_radius(model, x, y, norm)
    attack = FMNLinf(steps=100) if norm == "linf" else FMNL2(steps=100)
    result = attack(model, x, y, eps=LARGE_EPS[norm])
    assert result.success.all()
    # no adversarial can beat the true minimum; FMN must get within 5% of it
    assert (radius_of(result) >= expected * (1 - 1e-4)).all()
    assert (radius_of(result) <= expected * 1.05).all()
    assert torch.allclose(perturbation_norm(result.x_adv - x, norm), radius_of(result))


@pytest.mark.parametrize("name", ["fmn", "fmn-l2"])
def test_success_is_radius_within_eps_and_a_larger_eps_never_gives_a_larger_radius(mlp, name):
    model, x, y = mlp
    grid = [0.03, 0.1, 0.3] if name == "fmn" else [0.3, 1.0, 3.0]
    previous = torch.full((len(x),), torch.inf)
    for eps in grid:
        result = create_attack(name, steps=30)(model, x, y, eps=eps)
        assert torch.equal(result.success, radius_of(result) <= eps)
        assert torch.equal(result.x_adv[~result.success], x[~result.success])
        assert (radius_of(result) <= previous).all()
        previous = radius_of(result)
    assert torch.isfinite(previous).float().mean() > 0.5


def test_misclassified_inputs_get_radius_zero_and_leave(linear):
    model, x, y = linear
    wrong = (y + 1) % 4
    model.seen = 0
    result = FMNLinf(steps=50)(model, x, wrong, eps=0.1)
    assert result.success.all()
    assert (radius_of(result) == 0).all()
    assert torch.equal(result.x_adv, x)
    assert model.seen == 2 * len(x)  # the first step, then the final scoring


def test_misclassified_inputs_leave_while_the_rest_search(linear):
    model, x, y = linear
    labels = y.clone()
    labels[:4] = (y[:4] + 1) % 4
    model.seen = 0
    result = FMNL2(steps=10)(model, x, labels, eps=5.0)
    assert (radius_of(result)[:4] == 0).all() and (radius_of(result)[4:] > 0).all()
    assert model.seen == len(x) + 10 * (len(x) - 4) + len(x)


def test_given_targets_are_reached(mlp):
    model, x, y = mlp
    targets = (y + 2) % 5
    result = FMNL2(steps=50)(model, x, y, eps=10.0, targets=targets)
    assert torch.equal(result.success, result.adv_pred == targets)
    assert result.success.float().mean() >= 0.9


def test_restarts_run_only_on_points_not_broken_within_eps(mlp):
    model, x, y = mlp
    torch.manual_seed(0)
    one = FMNLinf(steps=20)(model, x, y, eps=0.05)
    torch.manual_seed(0)
    three = FMNLinf(steps=20, restarts=3)(model, x, y, eps=0.05)
    assert torch.equal(radius_of(one)[one.success], radius_of(three)[one.success])
    assert (three.success >= one.success).all()


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(RobustkitError, match="gamma"):
        FMNLinf(gamma_init=0.0)
    with pytest.raises(RobustkitError, match="alpha"):
        FMNL2(alpha_init=-1.0)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_radii_no_larger_than_foolbox_fmn(trained, norm):
    model, x, y = trained
    name = "fmn" if norm == "linf" else "fmn-l2"
    ours = create_attack(name, steps=50)(model, x, y, eps=LARGE_EPS[norm] * 2)
    theirs = foolbox_radius(model, x, y, norm, steps=50)
    assert ours.success.all() and torch.isfinite(theirs).all()
    # same algorithm (theirs lacks a working L2 projection, which only hurts it): the median
    # radius must not be worse by more than 10%
    assert radius_of(ours).median() <= 1.1 * theirs.median()


@pytest.mark.slow
def test_fmn_on_the_bundled_cnn_matches_foolbox():
    model = load_zoo_model("mnist-cnn", device="cpu")
    dataset = load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(100)])
    y = torch.tensor([int(dataset[i][1]) for i in range(100)])
    with torch.no_grad():
        correct = model(x).argmax(dim=1) == y
    x, y = x[correct], y[correct]
    ours = create_attack("fmn", steps=100)(model, x, y, eps=1.0)
    theirs = foolbox_radius(model, x, y, "linf", steps=100)
    assert ours.success.all()
    assert abs(radius_of(ours).median() - theirs.median()) <= 0.1 * theirs.median()
