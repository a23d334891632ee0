"""`robustkit train-gan`: train a generator for the manifold-projection defense.

Registered in robustkit.cli as ``app.command("train-gan")(clean_errors(train_gan_command))``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from robustkit.commands.console import logging_to, stderr, stdout
from robustkit.commands.options import DataRoot
from robustkit.errors import RobustkitError

if TYPE_CHECKING:  # torch and the GAN code load when the command runs: --help stays quick
    from torch import nn

    from robustkit.generative.training import GANStep

GAN_DATASETS = ("mnist", "fashion-mnist")
DEFAULT_CLASSIFIERS = {"mnist": "zoo:mnist-cnn"}


def train_gan_command(
    dataset: Annotated[str, typer.Option(help="mnist or fashion-mnist")] = "mnist",
    data_root: DataRoot = None,
    arch: Annotated[str, typer.Option(help="dcgan or wgan-gp")] = "dcgan",
    iterations: Annotated[int, typer.Option(help="generator updates")] = 5000,
    batch_size: Annotated[int, typer.Option(help="images per minibatch")] = 64,
    latent_dim: Annotated[int, typer.Option(help="latent size")] = 128,
    width: Annotated[int, typer.Option(help="channels after the dense layer")] = 256,
    lr: Annotated[
        float | None, typer.Option(help="Adam lr (default: 2e-4 dcgan, 1e-4 wgan-gp)")
    ] = None,
    sample_every: Annotated[
        int, typer.Option(help="write samples, metrics and a checkpoint every K iterations")
    ] = 500,
    eval_images: Annotated[
        int, typer.Option(help="held-out test images for the reconstruction error")
    ] = 64,
    classifier: Annotated[
        str | None,
        typer.Option(help="model labelling samples (default zoo:mnist-cnn on mnist; 'none')"),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="generator file; .ckpt.pt/.metrics.csv/.samples beside")
    ] = Path("gen.pt"),
    resume: Annotated[bool, typer.Option(help="continue from OUT's .ckpt.pt")] = False,
    half: Annotated[bool, typer.Option(help="write the final generator in fp16")] = False,
    seed: Annotated[int, typer.Option(help="seed for init, batches and latents")] = 0,
) -> None:
    """Train a DCGAN or WGAN-GP generator for the manifold-projection defense."""
    from robustkit.data import dataset_tensors, load_dataset
    from robustkit.generative.generators import GeneratorConfig, save_generator
    from robustkit.generative.training import GANTrainConfig, train_gan

    _check_choices(dataset, arch)
    config = GANTrainConfig(
        generator=GeneratorConfig(arch=arch, latent_dim=latent_dim, width=width, dataset=dataset),
        iterations=iterations,
        batch_size=batch_size,
        lr=lr,
        sample_every=sample_every,
        seed=seed,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    info = load_dataset(dataset, root=data_root, train=True)
    holdout = load_dataset(dataset, root=data_root, num_samples=eval_images, seed=seed)
    labeller = _labeller(classifier, dataset)
    with logging_to(stderr), _progress() as on_step:
        generator = train_gan(
            dataset_tensors(info)[0],
            config,
            out=out,
            holdout=dataset_tensors(holdout)[0],
            classifier=labeller,
            resume=resume,
            on_step=on_step,
        )
    if half:
        save_generator(generator, out, half=True)
    stdout.print(f"wrote {out}", highlight=False)


def _check_choices(dataset: str, arch: str) -> None:
    """--dataset and --arch checked before any data loads."""
    from robustkit.generative.generators import ARCHS

    if dataset not in GAN_DATASETS:
        raise RobustkitError(f"train-gan supports {', '.join(GAN_DATASETS)}, not {dataset!r}")
    if arch not in ARCHS:
        raise RobustkitError(f"unknown --arch {arch!r}: use dcgan or wgan-gp")


def _labeller(classifier: str | None, dataset: str) -> nn.Module | None:
    """The model that labels samples: --classifier, the dataset's default, or none."""
    from robustkit.models import load_model

    spec = classifier if classifier is not None else DEFAULT_CLASSIFIERS.get(dataset)
    return load_model(spec, device="cpu") if spec and spec != "none" else None


@contextmanager
def _progress() -> Iterator[Callable[[GANStep], None]]:
    """A Rich progress bar on stderr (only on a terminal) and the callback that drives it."""
    from robustkit.progress import progress_bar

    bar = progress_bar("train-gan", stats=True)
    task = bar.add_task("train-gan", total=None, stats="")

    def on_step(step: GANStep) -> None:
        bar.update(
            task,
            completed=step.iteration,
            total=step.iterations,
            stats=f"loss D {step.loss_d:.3f}  G {step.loss_g:.3f}",
        )

    with bar:
        yield on_step
