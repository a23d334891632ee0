"""Training methods: the attack each one crafts with, its loss, its rules, and the registry."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from robustkit.attacks import LatentOverpowered, PGDLinf
from robustkit.errors import RobustkitError
from robustkit.generative.zoo import load_zoo_generator
from robustkit.training import TRAINING_METHODS, TrainConfig, training_method
from robustkit.training.methods import TrainingMethod

CPU = torch.device("cpu")


def _create(**options: object) -> TrainingMethod:
    config = TrainConfig(**options)  # type: ignore[arg-type]
    return training_method(config.method).create(config, CPU)


def _tiny_classifier() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))


def test_fgsm_rs_is_one_step_of_1_25_eps_from_a_random_start_without_early_stop():
    attack = _create(method="fgsm-rs", steps=7).attack  # type: ignore[attr-defined]
    assert isinstance(attack, PGDLinf)
    assert (attack.steps, attack.random_start, attack.early_stop) == (1, True, False)
    assert attack.stepsize(0.3) == pytest.approx(0.375)


@pytest.mark.parametrize("method", ["pgd", "trades"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_k_steps_2_5_eps_over_k_without_early_stop(method, norm):
    attack = _create(method=method, norm=norm, steps=10).attack  # type: ignore[attr-defined]
    assert attack.norm == norm
    assert (attack.steps, attack.random_start, attack.early_stop) == (10, True, False)
    assert attack.stepsize(0.3) == pytest.approx(0.075)


def test_manifold_training_searches_the_generators_latent_space_without_early_stop():
    method = _create(method="manifold", steps=5, generator="zoo:mnist-dcgan")
    attack = method.attack  # type: ignore[attr-defined]
    assert isinstance(attack, LatentOverpowered)
    assert attack.generator.name == "zoo:mnist-dcgan"
    assert (attack.steps, attack.early_stop) == (5, False)
    reference = load_zoo_generator("mnist-dcgan")
    z = torch.zeros(1, reference.latent_dim)
    with torch.no_grad():
        assert torch.equal(attack.generator(z), reference(z))


def test_natural_loss_is_the_cross_entropy_on_clean_images_in_train_mode():
    model, x, y = _tiny_classifier().eval(), torch.rand(8, 1, 28, 28), torch.arange(8)
    loss, logits = _create(method="natural").loss(model, x, y, eps=0.3)
    assert model.training
    assert torch.equal(logits, model(x))
    assert loss.item() == pytest.approx(F.cross_entropy(model(x), y).item())


def test_trades_adds_beta_times_the_kl_to_the_adversarials_to_the_clean_loss():
    model, x, y = _tiny_classifier(), torch.rand(8, 1, 28, 28), torch.arange(8)
    losses = {}
    for beta in (0.0, 6.0):
        torch.manual_seed(1)  # the same random start for both
        loss, logits = _create(method="trades", beta=beta, eps=0.1, steps=2).loss(model, x, y, 0.1)
        losses[beta] = loss.item()
    clean = model(x)
    kl = F.kl_div(F.log_softmax(logits, dim=1), F.softmax(clean, dim=1), reduction="batchmean")
    assert not torch.allclose(logits, clean)  # trained on the adversarials
    assert losses[0.0] == pytest.approx(F.cross_entropy(clean, y).item())
    assert losses[6.0] == pytest.approx(losses[0.0] + 6.0 * kl.item(), rel=1e-5)


def test_pgd_trains_on_adversarials_that_raise_the_loss():
    model, x, y = _tiny_classifier(), torch.rand(8, 1, 28, 28), torch.arange(8)
    loss, _ = _create(method="pgd", eps=0.3, steps=5).loss(model, x, y, 0.3)
    assert model.training
    assert loss.item() > F.cross_entropy(model(x), y).item() + 0.1


def test_only_methods_aiming_for_pixel_space_robustness_are_guarded():
    assert [name for name in TRAINING_METHODS if training_method(name).guarded] == [
        "pgd",
        "fgsm-rs",
        "trades",
    ]


def test_an_unknown_method_gets_the_shared_did_you_mean_error():
    with pytest.raises(RobustkitError) as err:
        training_method("pgb")
    assert str(err.value) == (
        "unknown training method 'pgb': did you mean pgd? "
        "available: pgd, fgsm-rs, trades, manifold, natural"
    )


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"method": "pgb"}, "did you mean pgd"),
        ({"norm": "l3"}, "unknown norm 'l3'"),
        ({"method": "fgsm-rs", "norm": "l2"}, "fgsm-rs trains under L-inf only"),
        ({"method": "manifold", "norm": "l2", "generator": "zoo:mnist-dcgan"}, "L-inf only"),
        ({"method": "manifold"}, "needs --generator"),
        ({"method": "pgd", "generator": "zoo:mnist-dcgan"}, "only for --method manifold"),
        ({"method": "trades", "steps": 0}, "--steps must be >= 1 for trades"),
    ],
)
def test_each_method_rejects_options_it_cannot_train_with(options, fragment):
    with pytest.raises(RobustkitError, match=fragment):
        TrainConfig(**options)


@pytest.mark.parametrize("method", ["natural", "fgsm-rs"])
def test_methods_without_an_iterative_attack_ignore_steps(method):
    assert TrainConfig(method=method, steps=0).steps == 0
