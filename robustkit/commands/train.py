"""`robustkit train`: adversarial training from the command line.

Registered in robustkit.cli as ``app.command("train")(clean_errors(train_command))``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from robustkit.commands.choices import FRESH_ARCHITECTURES
from robustkit.commands.console import logging_to, recorded_command, stderr, stdout
from robustkit.commands.options import DataRoot, Device, OutputIndex, OutputKey
from robustkit.errors import RobustkitError

if TYPE_CHECKING:  # torch and the training code load when the command runs: --help stays quick
    from robustkit.training import StepStats


def train_command(
    model: Annotated[
        str,
        typer.Option(
            help="arch:NAME (fresh: " + ", ".join(FRESH_ARCHITECTURES) + ") or any model spec to "
            "fine-tune (zoo:NAME, file.py:factory, ...)"
        ),
    ] = "arch:fast-mnist",
    output_index: OutputIndex = None,
    output_key: OutputKey = None,
    dataset: Annotated[
        str, typer.Option(help="mnist, fashion-mnist, cifar10 or imagefolder:PATH")
    ] = "mnist",
    data_root: DataRoot = None,
    method: Annotated[
        str, typer.Option(help="pgd, fgsm-rs, trades, manifold (needs --generator) or natural")
    ] = "pgd",
    norm: Annotated[str, typer.Option(help="threat model of pgd/trades: linf or l2")] = "linf",
    eps: Annotated[float, typer.Option(help="training budget (also the monitored one)")] = 0.3,
    steps: Annotated[
        int, typer.Option(help="attack steps per minibatch (pgd, trades: PGD; manifold: latent)")
    ] = 7,
    epochs: Annotated[int, typer.Option(help="epochs")] = 10,
    batch_size: Annotated[int, typer.Option(help="images per minibatch")] = 100,
    lr: Annotated[float, typer.Option(help="peak learning rate of the cyclic schedule")] = 5e-3,
    eps_warmup: Annotated[float, typer.Option(help="epochs ramping eps up from 0")] = 0.0,
    beta: Annotated[float, typer.Option(help="TRADES robust-loss weight")] = 6.0,
    holdout: Annotated[int, typer.Option(help="training images held out for monitoring")] = 500,
    check_every: Annotated[
        int | None, typer.Option(help="also check the held-out batch every K steps")
    ] = None,
    guard: Annotated[
        bool, typer.Option(help="stop and roll back on catastrophic overfitting")
    ] = True,
    out: Annotated[Path, typer.Option(help="weights file; .json/.metrics.csv/.ckpt.pt beside")] = (
        Path("model.pt")
    ),
    resume: Annotated[
        Path | None, typer.Option(help="checkpoint (.ckpt.pt) of an interrupted run")
    ] = None,
    generator: Annotated[
        str | None,
        typer.Option(
            help="manifold: the generator whose range to train on (zoo:mnist-dcgan, GEN.pt)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed for init, shuffling and attacks")] = 0,
    num_samples: Annotated[int | None, typer.Option(help="seeded training subset size")] = None,
    device: Device = None,
) -> None:
    """Train a model (adversarially) and write its weights, metadata and per-epoch metrics."""
    from robustkit.data import load_dataset
    from robustkit.models import check_classifier
    from robustkit.training import TrainConfig, check_output, initial_model, train

    config = TrainConfig(
        method=method,
        eps=eps,
        norm=norm,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        eps_warmup=eps_warmup,
        beta=beta,
        holdout=holdout,
        check_every=check_every,
        guard=guard,
        seed=seed,
        generator=generator,
    )
    paths = check_output(out)
    if resume is not None and not resume.is_file():
        raise RobustkitError(f"--resume {resume} not found: give the .ckpt.pt of the run")
    info = load_dataset(dataset, root=data_root, train=True, num_samples=num_samples, seed=seed)
    robust_model = initial_model(
        model, info, seed=seed, device=device, output_index=output_index, output_key=output_key
    )
    first, _ = info.dataset[0]
    check_classifier(robust_model, first.unsqueeze(0).to(robust_model.device))
    meta = {"model_spec": model, "command": recorded_command()}
    with logging_to(stderr), _progress() as on_step:
        result = train(
            robust_model, info, config, out=out, resume=resume, on_step=on_step, metadata=meta
        )
    acc = result.metadata["holdout_accuracy"]
    stdout.print(
        f"wrote {paths['weights']} (held-out clean {acc['clean_accuracy']:.1%}, "
        f"FGSM {acc['fgsm_accuracy']:.1%}, PGD-10 {acc['pgd_accuracy']:.1%} at eps {eps:g}"
        f"{', stopped early on catastrophic overfitting' if result.stopped_early else ''})",
        highlight=False,
    )


@contextmanager
def _progress() -> Iterator[Callable[[StepStats], None]]:
    """A Rich progress bar on stderr (only on a terminal) and the callback that drives it."""
    from robustkit.progress import progress_bar

    bar = progress_bar("epoch {task.fields[epoch]}", stats=True)
    task = bar.add_task("train", total=None, epoch=0, stats="")

    def on_step(stats: StepStats) -> None:
        held = stats.holdout
        shown = f"loss {stats.loss:.3f}  train acc {stats.train_accuracy:.1%}"
        if held:
            shown += f"  held-out clean {held['clean_accuracy']:.1%} PGD {held['pgd_accuracy']:.1%}"
        bar.update(
            task,
            completed=stats.step + 1,
            total=stats.steps_per_epoch,
            epoch=stats.epoch + 1,
            stats=shown,
        )

    with bar:
        yield on_step
