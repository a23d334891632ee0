"""The overpowered latent-space attack: generator plumbing, on-range adversarials, defense audit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustkit.attacks import LatentOverpowered, create_attack
from robustkit.defenses.evaluation import audit_defense
from robustkit.defenses.manifold import ManifoldProjectionDefense
from robustkit.errors import RobustkitError
from robustkit.generative.generators import Generator, GeneratorConfig
from robustkit.generative.projection import ProjectionConfig, project
from robustkit.models import load_model
from robustkit.reports.views import defense_table


class SigmoidGenerator(nn.Module):
    """An injective map from latents in [-1, 1]^4 to 1 x 6 x 6 images: projection inverts it."""

    latent_dim = 4
    output_shape = (1, 6, 6)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 36), nn.Sigmoid(), nn.Unflatten(1, (1, 6, 6)))
        with torch.no_grad():
            self.net[0].weight.mul_(3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@pytest.fixture
def linear_model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 3))


def test_without_a_generator_the_error_names_the_fix(linear_model: nn.Module) -> None:
    x = torch.rand(2, 1, 6, 6)
    with pytest.raises(RobustkitError, match="--defense manifold:"):
        create_attack("latent-overpowered")(
            linear_model, x, torch.zeros(2, dtype=torch.long), eps=0.1
        )


def test_a_generator_of_another_shape_is_one_clear_line(linear_model: nn.Module) -> None:
    attack = LatentOverpowered(generator=SigmoidGenerator())
    x = torch.rand(2, 3, 6, 6)
    model = nn.Sequential(nn.Flatten(), nn.Linear(108, 3))
    with pytest.raises(RobustkitError, match=r"makes images of shape \(1, 6, 6\)"):
        attack(model, x, torch.zeros(2, dtype=torch.long), eps=0.1)


def test_inputs_on_the_range_get_adversarials_on_the_range(linear_model: nn.Module) -> None:
    generator = SigmoidGenerator().eval()
    z_true = torch.rand(32, 4, generator=torch.Generator().manual_seed(2)) * 1.6 - 0.8
    with torch.no_grad():
        x = generator(z_true)
        y = linear_model(x).argmax(dim=1)
    torch.manual_seed(0)
    attack = LatentOverpowered(generator=generator, steps=100, projection_steps=300)
    result = attack(linear_model, x, y, eps=1.0)  # a budget so wide that no move is clipped
    assert result.success.float().mean() >= 0.5
    # x + (G(z) - G(z0)) with G(z0) = x is G(z) itself: the projection finds it exactly.
    found = project(generator, result.x_adv[result.success], ProjectionConfig(steps=300), seed=0)
    assert found.error.max() < 1e-3
    # Unbroken points never moved far off the range either; no point left the eps-ball.
    assert (result.x_adv - x).abs().max() <= 1.0


def test_targeted_search_reaches_the_target(linear_model: nn.Module) -> None:
    generator = SigmoidGenerator().eval()
    z = torch.rand(16, 4, generator=torch.Generator().manual_seed(4)) * 1.6 - 0.8
    with torch.no_grad():
        x = generator(z)
        y = linear_model(x).argmax(dim=1)
    targets = (y + 1) % 3
    torch.manual_seed(0)
    attack = LatentOverpowered(generator=generator, steps=100, projection_steps=300)
    result = attack(linear_model, x, y, eps=1.0, targets=targets)
    assert torch.equal(result.success, result.adv_pred == targets)
    assert result.success.float().mean() >= 0.5


def test_early_stop_leaves_points_already_broken_untouched(linear_model: nn.Module) -> None:
    generator = SigmoidGenerator().eval()
    x = generator(torch.zeros(8, 4)).detach()
    y = (linear_model(x).argmax(dim=1) + 1) % 3  # every point starts misclassified
    result = LatentOverpowered(generator=generator, steps=50)(linear_model, x, y, eps=0.5)
    assert result.success.all()
    assert torch.equal(result.x_adv, x)  # the start point G(z0) - G(z0) = no move at all


def test_defense_audit_runs_the_latent_attack_with_the_defenses_generator() -> None:
    torch.manual_seed(0)
    classifier = load_model("zoo:mnist-cnn", device="cpu")
    generator = Generator(GeneratorConfig(latent_dim=16, width=16)).eval()
    defense = ManifoldProjectionDefense(classifier, generator, steps=5, restarts=1)
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    y = classifier(x).argmax(dim=1).detach()
    result = audit_defense(
        classifier,
        defense,
        (x, y),
        attacks=["pgd-linf", LatentOverpowered(steps=3, projection_steps=5)],
        eps=[0.3],
        steps=3,
        eot_samples=1,
    )
    attacks = set(result.frame["attack"])
    assert {"latent:latent-overpowered", "latent-overpowered", "bpda:pgd-linf"} <= attacks
    assert "oblivious:latent-overpowered" not in attacks
    assert result.config["families"][-1] == "latent"
    latent_config = result.config["attacks"][1]
    assert (
        latent_config["name"] == "latent-overpowered"
        and latent_config["generator"] == "dcgan(mnist)"
    )
    summary = result.summary().set_index(["model", "attack"])["robust_accuracy"]
    assert (
        summary[(defense.name, "worst-case")]
        <= summary[(defense.name, "latent:latent-overpowered")]
    )
    table = defense_table(result)
    assert table is not None and "latent" in table.columns
