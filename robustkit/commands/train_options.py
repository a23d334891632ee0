"""The options of ``robustkit train``, one typed, frozen record (:class:`TrainOptions`).

Each field is one command-line option: its type, its ``typer.Option(...)`` (help and flags) and
its default, in the order ``robustkit train --help`` lists them; the command
(:mod:`robustkit.commands.train`) gets them as one record through
:func:`robustkit.commands.records.takes_options`.

Adding an option is a one-field change: add ``name: Annotated[type, typer.Option(help=...)] =
default`` here, next to the options it belongs with (its place is its place in the help), and
read ``options.name`` where the command uses it (a training hyper-parameter also goes into
:class:`~robustkit.training.TrainConfig`, which ``train_config`` builds from the record).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from robustkit.commands.choices import FRESH_ARCHITECTURES
from robustkit.commands.options import DataRoot, Device, OutputIndex, OutputKey


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """What ``robustkit train`` was given, as parsed."""

    model: Annotated[
        str,
        typer.Option(
            help="arch:NAME (fresh: " + ", ".join(FRESH_ARCHITECTURES) + ") or any model spec to "
            "fine-tune (zoo:NAME, file.py:factory, ...)"
        ),
    ] = "arch:fast-mnist"
    output_index: OutputIndex = None
    output_key: OutputKey = None
    dataset: Annotated[
        str, typer.Option(help="mnist, fashion-mnist, cifar10 or imagefolder:PATH")
    ] = "mnist"
    data_root: DataRoot = None
    method: Annotated[
        str, typer.Option(help="pgd, fgsm-rs, trades, manifold (needs --generator) or natural")
    ] = "pgd"
    norm: Annotated[str, typer.Option(help="threat model of pgd/trades: linf or l2")] = "linf"
    eps: Annotated[float, typer.Option(help="training budget (also the monitored one)")] = 0.3
    steps: Annotated[
        int, typer.Option(help="attack steps per minibatch (pgd, trades: PGD; manifold: latent)")
    ] = 7
    epochs: Annotated[int, typer.Option(help="epochs")] = 10
    batch_size: Annotated[int, typer.Option(help="images per minibatch")] = 100
    lr: Annotated[float, typer.Option(help="peak learning rate of the cyclic schedule")] = 5e-3
    eps_warmup: Annotated[float, typer.Option(help="epochs ramping eps up from 0")] = 0.0
    beta: Annotated[float, typer.Option(help="TRADES robust-loss weight")] = 6.0
    holdout: Annotated[int, typer.Option(help="training images held out for monitoring")] = 500
    check_every: Annotated[
        int | None, typer.Option(help="also check the held-out batch every K steps")
    ] = None
    guard: Annotated[
        bool,
        typer.Option(help="stop and roll back on catastrophic overfitting"),
    ] = True
    out: Annotated[
        Path,
        typer.Option(help="weights file; .json/.metrics.csv/.ckpt.pt beside"),
    ] = Path("model.pt")
    resume: Annotated[
        Path | None, typer.Option(help="checkpoint (.ckpt.pt) of an interrupted run")
    ] = None
    generator: Annotated[
        str | None,
        typer.Option(
            help="manifold: the generator whose range to train on (zoo:mnist-dcgan, GEN.pt)"
        ),
    ] = None
    seed: Annotated[int, typer.Option(help="seed for init, shuffling and attacks")] = 0
    num_samples: Annotated[int | None, typer.Option(help="seeded training subset size")] = None
    device: Device = None
