"""The GAN manifold-projection defense: projection, BPDA/EOT, training files, honest audit."""

from __future__ import annotations

import itertools

import pytest
import torch
import typer
from typer.testing import CliRunner

from robustkit.attacks import LatentOverpowered, PGDLinf
from robustkit.commands.console import clean_errors
from robustkit.commands.gan import train_gan_command
from robustkit.data import load_dataset
from robustkit.defenses.adaptive import EOT
from robustkit.defenses.evaluation import audit_defense
from robustkit.defenses.manifold import ManifoldProjectionDefense, load_defense
from robustkit.errors import RobustkitError
from robustkit.generative.generators import (
    Generator,
    GeneratorConfig,
    load_generator,
    sample_latents,
    save_generator,
)
from robustkit.generative.projection import ProjectionConfig, project
from robustkit.generative.training import GANTrainConfig, run_paths, train_gan
from robustkit.generative.zoo import GENERATOR_ZOO, load_zoo_generator
from robustkit.models import load_model


@pytest.fixture(scope="module")
def tiny_generator() -> Generator:
    torch.manual_seed(0)
    return Generator(GeneratorConfig(latent_dim=16, width=16)).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def classifier() -> torch.nn.Module:
    return load_model("zoo:mnist-cnn", device="cpu")


def test_projection_recovers_generator_samples(tiny_generator: Generator) -> None:
    z = sample_latents(4, 16, generator=torch.Generator().manual_seed(1)) * 0.9
    x = tiny_generator(z)
    result = project(tiny_generator, x, ProjectionConfig(steps=150, restarts=2, lr=0.1), seed=0)
    assert result.x_proj.shape == x.shape
    assert (result.error / x[0].numel()).max() < 1e-4
    assert result.z.abs().max() <= 1


def test_more_restarts_never_worse(tiny_generator: Generator) -> None:
    x = torch.rand(3, 1, 28, 28)
    errors = [
        project(tiny_generator, x, ProjectionConfig(steps=20, restarts=r), seed=3).error
        for r in (1, 2, 4)
    ]
    for fewer, more in itertools.pairwise(errors):
        assert (more <= fewer * (1 + 1e-5) + 1e-6).all()


def test_defense_is_differentiable_through_bpda(
    tiny_generator: Generator, classifier: torch.nn.Module
) -> None:
    defense = ManifoldProjectionDefense(classifier, tiny_generator, steps=5, restarts=2)
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    logits = defense(x)
    (grad,) = torch.autograd.grad(logits[:, 0].sum(), x)
    assert grad.abs().sum() > 0
    assert defense.is_randomized


def test_eot_averages_stochastic_passes(classifier: torch.nn.Module) -> None:
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(EOT(classifier, samples=4)(x), classifier(x), atol=1e-5)
    with pytest.raises(RobustkitError, match="samples >= 1"):
        EOT(classifier, samples=0)


def test_generator_checkpoints_load_with_weights_only(
    tiny_generator: Generator, tmp_path: pytest.TempPathFactory
) -> None:
    path = tmp_path / "gen.pt"  # type: ignore[operator]
    save_generator(tiny_generator, path, half=True)
    payload = torch.load(path, weights_only=True)
    assert payload["config"]["latent_dim"] == 16
    loaded = load_generator(path)
    z = sample_latents(2, 16)
    with torch.no_grad():
        assert torch.allclose(loaded(z), tiny_generator(z), atol=1e-2)


@pytest.mark.parametrize("name", list(GENERATOR_ZOO))
def test_bundled_generators_load_and_make_images(name: str) -> None:
    generator = load_zoo_generator(name)
    with torch.no_grad():
        images = generator(sample_latents(4, generator.latent_dim))
    assert images.shape == (4, 1, 28, 28)
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("shape", [(2, 3, 28, 28), (2, 1, 32, 32), (784,)])
def test_wrong_input_shape_is_one_clear_line(
    tiny_generator: Generator, classifier: torch.nn.Module, shape: tuple[int, ...]
) -> None:
    defense = ManifoldProjectionDefense(classifier, tiny_generator, steps=1, restarts=1)
    with pytest.raises(RobustkitError, match="generator makes images of shape") as err:
        defense(torch.rand(shape))
    assert "\n" not in str(err.value)


def test_missing_or_foreign_generator_file_is_one_clear_line(
    classifier: torch.nn.Module, tmp_path: pytest.TempPathFactory
) -> None:
    with pytest.raises(RobustkitError, match="not found") as err:
        load_defense("manifold:/no/such/gen.pt", classifier)
    assert "\n" not in str(err.value)
    foreign = tmp_path / "weights.pt"  # type: ignore[operator]
    torch.save(classifier.state_dict(), foreign)
    with pytest.raises(RobustkitError, match="lacks 'config'"):
        load_defense(f"manifold:{foreign}", classifier)
    with pytest.raises(RobustkitError, match="use manifold:"):
        load_defense("gan:x.pt", classifier)
    with pytest.raises(RobustkitError, match="unknown zoo generator"):
        load_defense("manifold:zoo:mnist-dcgn", classifier)


def test_train_gan_writes_files_and_resumes(
    tmp_path: pytest.TempPathFactory, classifier: torch.nn.Module
) -> None:
    images = torch.rand(32, 1, 28, 28)
    out = tmp_path / "gen.pt"  # type: ignore[operator]
    generator = GeneratorConfig(latent_dim=8, width=8)
    config = GANTrainConfig(
        generator=generator,
        iterations=2,
        batch_size=4,
        sample_every=2,
        eval_steps=2,
        eval_restarts=1,
        eval_samples=16,
    )
    train_gan(images, config, out=out, holdout=images[:2], classifier=classifier)
    paths = run_paths(out)
    assert all(path.exists() for path in paths.values())
    assert (paths["samples"] / "iter-000002.png").is_file()
    wgan = GANTrainConfig(**{**config.__dict__, "iterations": 3, "generator": generator})
    with pytest.raises(RobustkitError, match="same --arch"):
        train_gan(
            images,
            GANTrainConfig(
                **{**wgan.__dict__, "generator": GeneratorConfig(latent_dim=4, width=8)}
            ),
            out=out,
            resume=True,
        )
    train_gan(images, wgan, out=out, holdout=images[:2], resume=True)
    metrics = paths["metrics"].read_text().splitlines()
    assert [line.split(",")[0] for line in metrics[1:]] == ["2", "3"]
    assert "recon_mse" in metrics[0] and "confident_share" in metrics[0]


def test_train_gan_command_rejects_bad_dataset_in_one_line() -> None:
    app = typer.Typer()
    app.command()(clean_errors(train_gan_command))
    result = CliRunner().invoke(app, ["--dataset", "cifar10"])
    assert result.exit_code == 2
    assert "supports mnist, fashion-mnist" in result.output


def test_wgan_gp_step_runs(tmp_path: pytest.TempPathFactory) -> None:
    config = GANTrainConfig(
        generator=GeneratorConfig(arch="wgan-gp", latent_dim=8, width=8),
        iterations=1,
        batch_size=4,
        critic_steps=2,
        sample_every=1,
    )
    generator = train_gan(torch.rand(16, 1, 28, 28), config, out=tmp_path / "w.pt")  # type: ignore[operator]
    assert not generator.training


@pytest.mark.slow
def test_adaptive_attack_beats_oblivious_on_mnist(classifier: torch.nn.Module) -> None:
    """The known gap (Athalye et al. 2018): BPDA + EOT and the latent-space attack break what
    the oblivious attack cannot."""
    torch.manual_seed(0)
    defense = load_defense("manifold:zoo:mnist-dcgan", classifier, steps=30, restarts=2)
    data = load_dataset("mnist-sample", num_samples=24, seed=0)
    result = audit_defense(
        classifier,
        defense,
        data,
        attacks=[PGDLinf(steps=10, rel_stepsize=0.25), LatentOverpowered(steps=20)],
        eps=[0.3],
        eot_samples=2,
    )
    accuracy = result.summary().set_index(["model", "attack"])["robust_accuracy"]
    oblivious = accuracy[(defense.name, "oblivious:pgd-linf")]
    adaptive = accuracy[(defense.name, "bpda-eot:pgd-linf")]
    latent = accuracy[(defense.name, "latent:latent-overpowered")]
    assert accuracy[(classifier.name, "pgd-linf")] < 0.2
    assert adaptive < oblivious and latent < oblivious
    assert accuracy[(defense.name, "worst-case")] <= min(adaptive, latent)
