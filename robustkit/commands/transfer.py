"""`robustkit transfer`: a transferability matrix from the command line.

Registered in robustkit.cli as ``app.command("transfer")(clean_errors(transfer_command))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from robustkit.commands.choices import ENSEMBLE_MODES, SKLEARN_KINDS
from robustkit.commands.console import print_table, recorded_command, stdout
from robustkit.commands.options import DataRoot, Device, OutputIndex, OutputKey
from robustkit.errors import RobustkitError

if TYPE_CHECKING:  # torch and the library load when the command runs: --help stays quick
    from rich.progress import TaskID
    from torch import nn

    from robustkit.transfer import TransferResult


def transfer_command(
    models: Annotated[
        str, typer.Option(help="comma-separated model specs (zoo:NAME, file.py:factory, ...)")
    ] = "zoo:mnist-cnn",
    output_index: OutputIndex = None,
    output_key: OutputKey = None,
    sklearn: Annotated[
        str, typer.Option(help="scikit-learn models to train: " + ",".join(SKLEARN_KINDS))
    ] = "",
    ensemble: Annotated[
        bool, typer.Option(help="add the ensemble of --models as an extra source")
    ] = False,
    ensemble_mode: Annotated[str, typer.Option(help=" or ".join(ENSEMBLE_MODES))] = "loss",
    attack: Annotated[str, typer.Option(help="attack name (see robustkit attacks)")] = "pgd-linf",
    eps: Annotated[float, typer.Option(help="attack budget")] = 0.3,
    steps: Annotated[int | None, typer.Option(help="iterations (default: the attack's)")] = None,
    early_stop: Annotated[
        bool, typer.Option(help="stop at the first success (weaker transfer)")
    ] = False,
    dataset: Annotated[str, typer.Option(help="mnist, fashion-mnist, cifar10, ...")] = "mnist",
    data_root: DataRoot = None,
    num_samples: Annotated[int | None, typer.Option(help="seeded test subset size")] = 1000,
    train_samples: Annotated[
        int, typer.Option(help="seeded training subset for --sklearn models")
    ] = 5000,
    batch_size: Annotated[int, typer.Option(help="images per batch")] = 500,
    device: Device = None,
    seed: Annotated[int, typer.Option(help="seed for subsets, training and random starts")] = 0,
    out: Annotated[
        Path, typer.Option(help="folder for transfer_matrix.csv/.pivot.csv/.svg/.png")
    ] = (Path("robustkit-transfer")),
) -> None:
    """Craft adversarials on every model once and score them on every model."""
    from robustkit.attacks import attack_class
    from robustkit.auditing.results import ensure_writable_dir
    from robustkit.data import indices_record, load_dataset
    from robustkit.models import load_model
    from robustkit.models.ensemble import Ensemble
    from robustkit.progress import progress_bar
    from robustkit.transfer import transfer_matrix
    from robustkit.transfer.result import STEM
    from robustkit.transfer.sklearn_targets import KINDS, PREFIX, train_sklearn_targets

    out_dir = ensure_writable_dir(out)
    attack_class(attack)  # fail fast, before loading anything, on an unknown name
    kinds = _names(sklearn)
    for kind in kinds:
        if kind not in KINDS:
            raise RobustkitError(
                f"unknown --sklearn model {kind!r}: choose from {', '.join(KINDS)}"
            )
    nets: dict[str, nn.Module] = {
        spec: load_model(spec, device=device, output_index=output_index, output_key=output_key)
        for spec in _names(models)
    }
    info = load_dataset(dataset, root=data_root, num_samples=num_samples, seed=seed)
    targets: dict[str, nn.Module] = dict(nets)
    if kinds:
        targets |= train_sklearn_targets(
            kinds, dataset, root=data_root, num_samples=train_samples, seed=seed
        )
    if not targets:
        raise RobustkitError("give at least one model with --models or --sklearn")
    sources = {
        name: m
        for name, m in targets.items()
        if name in nets or KINDS[name.removeprefix(PREFIX)].differentiable
    }
    if ensemble:
        if len(nets) < 2:
            raise RobustkitError("--ensemble needs at least two --models")
        members = Ensemble(list(nets.values()), mode=ensemble_mode)
        sources[members.name] = members
    bar = progress_bar("crafting on {task.description}")
    tasks: dict[str, TaskID] = {}

    def on_progress(source: str, done: int, total: int) -> None:
        if source not in tasks:
            tasks[source] = bar.add_task(source, total=total)
        bar.update(tasks[source], completed=done)

    with bar:
        result = transfer_matrix(
            sources,
            targets,
            info,
            attack=attack,
            eps=eps,
            steps=steps,
            early_stop=early_stop,
            batch_size=batch_size,
            seed=seed,
            on_progress=on_progress,
        )
    result.config["dataset"] = info.name
    result.config.update(indices_record(info))  # which images: their dataset indices
    result.config["command"] = recorded_command()
    result.save(out_dir)
    print_table(matrix_table(result))
    stdout.print(f"{STEM}.csv/.pivot.csv/.svg/.png written to {out_dir}/", highlight=False)


def matrix_table(result: TransferResult) -> Table:
    """The conditioned matrix as a Rich table (rows: sources; columns: targets)."""
    pivot = result.pivot()
    table = Table(title=result.title())
    table.add_column("source \\ target")
    for target in pivot.columns:
        table.add_column(str(target), justify="right")
    for source, row in pivot.iterrows():
        table.add_row(str(source), *(f"{value:.0%}" for value in row))
    return table


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
