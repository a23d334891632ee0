"""Attack engine: the registry contract, budgets, early stop, restarts, targeted mode, errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from robustkit.attacks import (
    FGSM,
    PGDL2,
    Attack,
    AttackResult,
    PGDLinf,
    attack_class,
    create_attack,
    list_attacks,
    pgd_from_noise,
    pure_noise_probe,
)
from robustkit.errors import RobustkitError

BUDGET = {"linf": 0.1, "l2": 1.0, "l1": 8.0, "gaussian": 0.2}


class CountingModel(nn.Module):
    """A tiny linear classifier that counts the inputs it has been asked to classify and notes
    whether a gradient was ever taken through it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))
        self.seen = 0
        self.differentiated = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += len(x)
        logits = self.net(x)
        if logits.requires_grad:
            logits.register_hook(self._note_gradient)
        return logits

    def _note_gradient(self, grad: torch.Tensor) -> None:
        self.differentiated = True


class TinyGenerator(nn.Module):
    """Latents in [-1, 1]^4 to 3 x 8 x 8 images in [0, 1], for attacks that search a range."""

    latent_dim = 4
    output_shape = (3, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Sigmoid(), nn.Unflatten(1, (3, 8, 8)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def make_attack(name: str) -> Attack:
    """The registered attack with default hyper-parameters (and a generator if it needs one)."""
    needs = attack_class(name).needs_generator
    return create_attack(name, generator=TinyGenerator()) if needs else create_attack(name)


@pytest.fixture
def tiny() -> tuple[CountingModel, torch.Tensor, torch.Tensor]:
    model = CountingModel()
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return model, x, y


@pytest.mark.parametrize("name", list_attacks())
def test_every_registered_attack_keeps_bounds_budget_and_shapes(name, tiny):
    model, x, y = tiny
    attack = make_attack(name)
    eps = BUDGET[attack.norm]
    torch.manual_seed(0)
    result = attack(model, x, y, eps=eps)
    assert isinstance(result, AttackResult)
    assert (result.radius is not None) == attack.minimum_norm
    assert model.differentiated != attack.gradient_free
    assert result.x_adv.shape == x.shape and result.x_adv.dtype == x.dtype
    assert result.success.shape == (16,) and result.success.dtype == torch.bool
    assert result.adv_pred.shape == (16,)
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    delta = (result.x_adv - x).flatten(1)
    if attack.norm == "linf":
        assert delta.abs().max() <= eps + 1e-6
    elif attack.norm == "l2":
        assert delta.norm(dim=1).max() <= eps + 1e-5
    elif attack.norm == "l1":
        assert delta.abs().sum(dim=1).max() <= eps + 1e-5
    else:  # Gaussian noise: clipping only shrinks it, so its RMS stays near or below sigma
        assert delta.pow(2).mean().sqrt() <= eps * 1.1
    with torch.no_grad():
        assert torch.equal(model(result.x_adv).argmax(dim=1), result.adv_pred)
    assert torch.equal(result.success, result.adv_pred != y)


# What the audit's checks read of an attack, and the values each may take. Every attack states
# its loss; the flags are False unless it says otherwise, and the contract checks them against
# what it does: minimum_norm reports a radius, gradient_free never differentiates the model (both
# above), randomized_ok has the EOT fields (below).
DECLARED = {
    "loss": {"ce", "dlr", "margin", None},
    "gradient_free": {True, False},
    "minimum_norm": {True, False},
    "randomized_ok": {True, False},
}
PEERS = ["foolbox:LinfPGD", "art:ProjectedGradientDescent", "art:SquareAttack"]


def declared_by(cls: type[Attack], trait: str) -> type | None:
    """The class of ``cls``'s own hierarchy (below Attack) that sets ``trait``, if any."""
    own = cls.__mro__[: cls.__mro__.index(Attack)]
    return next((c for c in own if trait in vars(c)), None)


@pytest.mark.parametrize("name", [*list_attacks(), *PEERS])
def test_every_attack_declares_what_the_checks_read(name):
    cls = attack_class(name)
    assert declared_by(cls, "loss") is not None, f"{name} does not declare its loss"
    for trait, allowed in DECLARED.items():
        assert getattr(cls, trait) in allowed, f"{name}.{trait} = {getattr(cls, trait)!r}"
    fields = {field.name for field in dataclasses.fields(cls)}
    # the rand protocol hands these to exactly the attacks that work under EOT
    assert cls.randomized_ok == ({"eot_samples", "eval_passes"} <= fields)


def test_peers_take_their_kind_from_what_their_library_declares():
    assert attack_class("art:SquareAttack").gradient_free  # ART: needs no gradient
    assert not attack_class("art:ProjectedGradientDescent").gradient_free
    assert not attack_class("foolbox:LinfPGD").gradient_free  # foolbox declares nothing


@pytest.mark.parametrize("name", list_attacks())
def test_zero_budget_changes_nothing(name, tiny):
    model, x, y = tiny
    result = make_attack(name)(model, x, y, eps=0.0)
    assert torch.allclose(result.x_adv, x)
    assert not result.success.any()


def test_fgsm_is_one_signed_gradient_step(tiny):
    model, x, y = tiny
    x_req = x.clone().requires_grad_(True)
    nn.functional.cross_entropy(model(x_req), y, reduction="sum").backward()
    expected = (x + 0.05 * x_req.grad.sign()).clamp(0, 1)
    assert torch.allclose(FGSM()(model, x, y, eps=0.05).x_adv, expected, atol=1e-7)


def test_early_stop_skips_points_already_broken(tiny):
    model, x, y = tiny
    wrong = (y + 1) % 5
    model.seen = 0
    result = PGDLinf(steps=40)(model, x, wrong, eps=0.1)
    assert result.success.all()
    # one forward pass showed every point already misclassified, one scored what is returned
    assert model.seen == 2 * len(x)


def test_early_stop_spends_less_work_than_full_run(tiny):
    model, x, y = tiny
    model.seen = 0
    PGDLinf(steps=40, early_stop=True)(model, x, y, eps=0.3)
    with_stop = model.seen
    model.seen = 0
    full = PGDLinf(steps=40, early_stop=False)(model, x, y, eps=0.3)
    assert model.seen == 42 * len(x)  # 40 steps and the last iterate, then the scoring pass
    assert with_stop < model.seen / 4
    assert full.success.all()


def test_restarts_run_only_on_unbroken_points(tiny):
    model, x, y = tiny
    model.seen = 0
    result = PGDLinf(steps=5, restarts=3)(model, x, y, eps=0.02)
    unbroken = int((~result.success).sum())
    # a full run costs at most steps + 1 = 6 forwards per point; later restarts only see
    # survivors; one pass scores what is returned
    assert model.seen <= 6 * len(x) + 2 * 6 * unbroken + len(x)


def test_more_restarts_never_lower_attack_success(tiny):
    model, x, y = tiny
    torch.manual_seed(0)
    one = PGDLinf(steps=5, restarts=1)(model, x, y, eps=0.03).success.sum()
    torch.manual_seed(0)
    five = PGDLinf(steps=5, restarts=5)(model, x, y, eps=0.03).success.sum()
    assert five >= one


def test_targeted_attack_reaches_the_target(tiny):
    model, x, y = tiny
    targets = (y + 2) % 5
    result = PGDLinf(steps=100, rel_stepsize=0.05)(model, x, y, eps=1.0, targets=targets)
    assert torch.equal(result.success, result.adv_pred == targets)
    assert result.success.float().mean() >= 0.9


def test_l2_step_follows_the_normalised_gradient(tiny):
    model, x, y = tiny
    result = PGDL2(steps=1, random_start=False, rel_stepsize=1.0, early_stop=False)(
        model, x[:1] * 0.5 + 0.25, y[:1], eps=0.5
    )
    moved = (result.x_adv - (x[:1] * 0.5 + 0.25)).flatten().norm()
    assert moved == pytest.approx(0.5, rel=1e-4)


def test_attacks_are_frozen_with_keyword_only_hyper_parameters():
    attack = PGDLinf(steps=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        attack.steps = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        PGDLinf(10)  # type: ignore[misc]


def test_registry_lists_with_wildcards_and_suggests_close_names():
    assert list_attacks("pgd*") == ["pgd-l2", "pgd-linf"]
    with pytest.raises(RobustkitError, match="did you mean pgd-linf"):
        create_attack("pgd-lnf")
    with pytest.raises(RobustkitError, match="bad parameters for attack 'fgsm'"):
        create_attack("fgsm", stepz=3)


@pytest.mark.parametrize(
    ("inputs", "labels", "eps", "message"),
    [
        (torch.rand(4, 3, 8, 8) * 255, torch.zeros(4, dtype=torch.long), 0.1, "outside"),
        (torch.rand(3, 8, 8), torch.zeros(3, dtype=torch.long), 0.1, "unsqueeze"),
        (torch.rand(4, 3, 8, 8), torch.zeros(3, dtype=torch.long), 0.1, "one class index"),
        (torch.rand(4, 3, 8, 8), torch.zeros(4), 0.1, "integer"),
        (torch.rand(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), -0.1, "eps must be >= 0"),
        (torch.rand(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), 1.5, "exceeds the pixel range"),
    ],
)
def test_bad_input_names_the_fix(tiny, inputs, labels, eps, message):
    model, _, _ = tiny
    with pytest.raises(RobustkitError, match=message):
        PGDLinf()(model, inputs, labels, eps=eps)


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(RobustkitError, match="steps must be >= 1, got 0"):
        PGDLinf(steps=0)
    with pytest.raises(RobustkitError, match="restarts must be >= 1, got 0"):
        PGDLinf(restarts=0)


def test_pure_noise_probe_covers_the_grid(tiny):
    model, _, _ = tiny
    grid = pure_noise_probe(model, (3, 8, 8), samples_per_cell=8)
    assert len(grid) == 100
    assert set(grid.columns) >= {"mean", "sigma", "top1_class", "confidence", "top1_share"}
    assert grid["confidence"].between(0.2, 1).all()  # 5 classes: the top-1 is at least 1/5
    assert grid["top1_class"].between(0, 4).all()


def test_pgd_from_noise_reaches_every_target_with_a_large_budget(tiny):
    model, _, _ = tiny
    torch.manual_seed(0)
    table = pgd_from_noise(model, (3, 8, 8), 5, eps=0.5, steps=20, samples_per_class=4)
    assert list(table["target"]) == [0, 1, 2, 3, 4]
    assert (table["success_rate"] == 1.0).all()
    assert (table["target_confidence"] > 0.5).all()
