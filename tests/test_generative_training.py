"""GAN training (robustkit/generative/training.py) and `robustkit train-gan`."""

from __future__ import annotations

import pytest
import torch
import typer
from typer.testing import CliRunner

from robustkit.commands.console import clean_errors
from robustkit.commands.gan import train_gan_command
from robustkit.errors import RobustkitError
from robustkit.generative.generators import GeneratorConfig
from robustkit.generative.training import GANTrainConfig, run_paths, train_gan


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
