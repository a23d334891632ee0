"""GAN training (DCGAN or WGAN-GP) with checkpoints, resume, sample grids and quality metrics.

Beside the generator file ``OUT`` a run writes ``OUT.ckpt.pt`` (everything needed to resume),
``OUT.metrics.csv`` (losses and quality per evaluation) and ``OUT.samples/iter-NNNNNN.png``.
Quality is measured without downloads: the mean squared reconstruction error of held-out test
images under projection, and how confidently a classifier labels generated samples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.checkpoints import load_checkpoint, save_checkpoint
from robustkit.errors import RobustkitError
from robustkit.generative.generators import (
    Discriminator,
    Generator,
    GeneratorConfig,
    sample_latents,
    save_generator,
)
from robustkit.generative.projection import ProjectionConfig, project
from robustkit.models.wrapper import device_of

log = logging.getLogger(__name__)

CONFIDENT = 0.9
HIST_BINS = 10
GRID = 64


@dataclass(frozen=True, kw_only=True)
class GANTrainConfig:
    """Hyper-parameters of a GAN run (DCGAN: Adam 2e-4, beta1 0.5, real labels 0.9;
    WGAN-GP: Adam 1e-4, betas (0.5, 0.9), 5 critic steps, gradient penalty 10)."""

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    iterations: int = 2000
    batch_size: int = 64
    lr: float | None = None
    critic_steps: int = 5
    gp_weight: float = 10.0
    real_label: float = 0.9
    sample_every: int = 500
    eval_steps: int = 100
    eval_restarts: int = 4
    eval_samples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch_size < 2 or self.sample_every < 1:
            raise RobustkitError("iterations and --sample-every must be >= 1, batch size >= 2")

    @property
    def learning_rate(self) -> float:
        default = 2e-4 if self.generator.arch == "dcgan" else 1e-4
        return self.lr if self.lr is not None else default


@dataclass(frozen=True)
class GANStep:
    """What a progress callback sees after each generator update."""

    iteration: int
    iterations: int
    loss_d: float
    loss_g: float


def run_paths(out: str | Path) -> dict[str, Path]:
    """The files of a run writing its generator to ``out``."""
    out = Path(out)
    stem = out.with_suffix("")
    return {
        "generator": out,
        "checkpoint": stem.with_suffix(".ckpt.pt"),
        "metrics": stem.with_suffix(".metrics.csv"),
        "samples": stem.with_suffix(".samples"),
    }


def train_gan(
    images: Tensor,
    config: GANTrainConfig,
    *,
    out: str | Path,
    holdout: Tensor | None = None,
    classifier: nn.Module | None = None,
    resume: bool = False,
    on_step: Callable[[GANStep], None] | None = None,
) -> Generator:
    """Train a generator on ``images`` (N, 1, 28, 28, pixels in [0, 1]) and write its files.

    ``holdout`` images measure reconstruction error; ``classifier`` labels generated samples.
    Every ``sample_every`` iterations (and at the end) the generator file, checkpoint, metrics
    and a sample grid are written. With ``resume`` the run continues from ``OUT.ckpt.pt`` up to
    ``config.iterations``.
    """
    from torchvision.utils import save_image  # lazy: torchvision is slow to import

    paths = run_paths(out)
    gen = Generator(config.generator)
    disc = Discriminator(batch_norm=config.generator.arch == "dcgan")
    betas = (0.5, 0.999) if config.generator.arch == "dcgan" else (0.5, 0.9)
    opt_g = torch.optim.Adam(gen.parameters(), lr=config.learning_rate, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.learning_rate, betas=betas)
    rng = torch.Generator().manual_seed(config.seed)
    start = 0
    if resume:
        start = _load_checkpoint(paths["checkpoint"], config, gen, disc, opt_g, opt_d, rng)
        log.info("resuming from iteration %d", start)
    paths["samples"].mkdir(parents=True, exist_ok=True)
    fixed_z = sample_latents(GRID, config.generator.latent_dim, generator=_fixed_rng(config))
    metrics = _previous_metrics(paths["metrics"], start) if resume else []
    step = _wgan_step if config.generator.arch == "wgan-gp" else _dcgan_step
    gen.train()
    disc.train()
    for iteration in range(start + 1, config.iterations + 1):
        loss_d, loss_g = step(images, gen, disc, opt_g, opt_d, rng, config)
        if on_step is not None:
            on_step(GANStep(iteration, config.iterations, loss_d, loss_g))
        if iteration % config.sample_every == 0 or iteration == config.iterations:
            row = {"iteration": iteration, "loss_d": loss_d, "loss_g": loss_g}
            row |= evaluate_generator(gen, holdout, classifier, config)
            save_image(
                gen(fixed_z).detach(), paths["samples"] / f"iter-{iteration:06d}.png", nrow=8
            )
            metrics.append(row)
            pd.DataFrame(metrics).to_csv(paths["metrics"], index=False)
            _save_checkpoint(paths["checkpoint"], iteration, config, gen, disc, opt_g, opt_d, rng)
            save_generator(gen, paths["generator"])
            log.info("iteration %d: %s", iteration, _format(row))
            gen.train()
    return gen.eval()


def _dcgan_step(
    images: Tensor,
    gen: Generator,
    disc: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    rng: torch.Generator,
    config: GANTrainConfig,
) -> tuple[float, float]:
    """One discriminator and one generator update; real labels smoothed to ``real_label``."""
    real = _batch(images, config.batch_size, rng)
    fake = gen(sample_latents(len(real), gen.latent_dim, generator=rng))
    d_real, d_fake = disc(real), disc(fake.detach())
    loss_d = F.binary_cross_entropy_with_logits(
        d_real, torch.full_like(d_real, config.real_label)
    ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    disc.requires_grad_(False)  # the generator step needs no discriminator weight gradients
    d_gen = disc(fake)
    loss_g = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    disc.requires_grad_(True)
    return loss_d.item(), loss_g.item()


def _wgan_step(
    images: Tensor,
    gen: Generator,
    disc: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    rng: torch.Generator,
    config: GANTrainConfig,
) -> tuple[float, float]:
    """``critic_steps`` critic updates with gradient penalty, then one generator update."""
    loss_d = torch.zeros(())
    for _ in range(config.critic_steps):
        real = _batch(images, config.batch_size, rng)
        with torch.no_grad():
            fake = gen(sample_latents(len(real), gen.latent_dim, generator=rng))
        mix = torch.rand(len(real), 1, 1, 1, generator=rng)
        between = (mix * real + (1 - mix) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(disc(between).sum(), between, create_graph=True)
        penalty = (grad.flatten(1).norm(dim=1) - 1).square().mean()
        loss_d = disc(fake).mean() - disc(real).mean() + config.gp_weight * penalty
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
    disc.requires_grad_(False)
    loss_g = -disc(gen(sample_latents(config.batch_size, gen.latent_dim, generator=rng))).mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    disc.requires_grad_(True)
    return loss_d.item(), loss_g.item()


def _batch(images: Tensor, size: int, rng: torch.Generator) -> Tensor:
    return images[torch.randint(len(images), (size,), generator=rng)]


@torch.no_grad()
def evaluate_generator(
    gen: Generator,
    holdout: Tensor | None,
    classifier: nn.Module | None,
    config: GANTrainConfig,
) -> dict[str, Any]:
    """Quality figures of a generator (put in eval mode): per-pixel reconstruction MSE of the
    held-out images, and the classifier's confidence on samples it labels itself."""
    gen.eval()
    row: dict[str, Any] = {}
    if holdout is not None:
        projection = project(
            gen,
            holdout,
            ProjectionConfig(steps=config.eval_steps, restarts=config.eval_restarts),
            seed=0,
        )
        row["recon_mse"] = projection.error.mean().item() / holdout[0].numel()
    if classifier is not None:
        z = sample_latents(config.eval_samples, gen.latent_dim, generator=_fixed_rng(config))
        probs = classifier(gen(z.to(device_of(gen)))).softmax(dim=1)
        confidence, label = probs.max(dim=1)
        shares = torch.bincount(label, minlength=probs.shape[1]).float() / len(label)
        row["mean_confidence"] = confidence.mean().item()
        row["confident_share"] = (confidence > CONFIDENT).float().mean().item()
        row["classes_seen"] = int((shares >= 0.01).sum())
        row["min_class_share"] = shares.min().item()
        hist = torch.histc(confidence, bins=HIST_BINS, min=0.0, max=1.0) / len(confidence)
        for i, share in enumerate(hist.tolist()):
            row[f"confidence_{i / HIST_BINS:.1f}_{(i + 1) / HIST_BINS:.1f}"] = share
    return row


def _fixed_rng(config: GANTrainConfig) -> torch.Generator:
    return torch.Generator().manual_seed(config.seed + 1)


def _format(row: dict[str, Any]) -> str:
    keys = ("loss_d", "loss_g", "recon_mse", "mean_confidence", "classes_seen")
    return ", ".join(f"{k} {row[k]:.4g}" for k in keys if k in row)


def _save_checkpoint(
    path: Path,
    iteration: int,
    config: GANTrainConfig,
    gen: Generator,
    disc: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    rng: torch.Generator,
) -> None:
    state = {
        "iteration": iteration,
        "generator_config": asdict(config.generator),
        "generator": gen.state_dict(),
        "discriminator": disc.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "rng": rng.get_state(),
    }
    save_checkpoint(path, state, kind="GAN")


def _load_checkpoint(
    path: Path,
    config: GANTrainConfig,
    gen: Generator,
    disc: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    rng: torch.Generator,
) -> int:
    state = load_checkpoint(path, kind="GAN")
    if state["generator_config"] != asdict(config.generator):
        raise RobustkitError(
            f"checkpoint {path} was trained with {state['generator_config']}: resume with the "
            "same --arch, --latent-dim and --width"
        )
    gen.load_state_dict(state["generator"])
    disc.load_state_dict(state["discriminator"])
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    rng.set_state(state["rng"])
    return int(state["iteration"])


def _previous_metrics(path: Path, up_to: int) -> list[dict[str, Any]]:
    """Rows of an interrupted run's metrics.csv, up to its checkpoint."""
    if not path.is_file():
        return []
    frame = pd.read_csv(path)
    return frame[frame["iteration"] <= up_to].to_dict("records")
