"""`robustkit transfer`: a transferability matrix from the command line.

Registered in robustkit.cli as ``app.command("transfer")(clean_errors(transfer_command))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from robustkit.commands.choices import ENSEMBLE_MODES, SKLEARN_KINDS
from robustkit.commands.console import print_table, recorded_command, stdout
from robustkit.commands.options import BatchSize, DataRoot, Device, OutputIndex, OutputKey
from robustkit.commands.universal import SAMPLES_HELP, check_universal_samples, crafting_job
from robustkit.errors import RobustkitError

if TYPE_CHECKING:  # torch and the library load when the command runs: --help stays quick
    from rich.progress import TaskID
    from torch import nn

    from robustkit.auditing.universal import UniversalJob
    from robustkit.data import DatasetInfo
    from robustkit.transfer import TransferResult


ModelSpecs = Annotated[
    str, typer.Option(help="comma-separated model specs (zoo:NAME, file.py:factory, ...)")
]
Sklearn = Annotated[
    str, typer.Option(help="scikit-learn models to train: " + ",".join(SKLEARN_KINDS))
]
EnsembleFlag = Annotated[bool, typer.Option(help="add the ensemble of --models as an extra source")]
EnsembleMode = Annotated[str, typer.Option(help=" or ".join(ENSEMBLE_MODES))]
AttackName = Annotated[str, typer.Option(help="attack name (see robustkit attacks)")]
Eps = Annotated[float, typer.Option(help="attack budget")]
Steps = Annotated[int | None, typer.Option(help="iterations (default: the attack's)")]
EarlyStop = Annotated[bool, typer.Option(help="stop at the first success (weaker transfer)")]
UniversalFlag = Annotated[
    bool,
    typer.Option(
        help="add a row universal:SOURCE per source: one universal perturbation (the attack's "
        "norm, L-inf or L2, within --eps) crafted on the training split, added to every image"
    ),
]
UniversalSamples = Annotated[int | None, typer.Option(help=SAMPLES_HELP, show_default=False)]
Dataset = Annotated[str, typer.Option(help="mnist, fashion-mnist, cifar10, ...")]
NumSamples = Annotated[int | None, typer.Option(help="seeded test subset size")]
TrainSamples = Annotated[int, typer.Option(help="seeded training subset for --sklearn models")]
Seed = Annotated[int, typer.Option(help="seed for subsets, training and random starts")]
Out = Annotated[Path, typer.Option(help="folder for transfer_matrix.csv/.pivot.csv/.svg/.png")]


def transfer_command(
    models: ModelSpecs = "zoo:mnist-cnn",
    output_index: OutputIndex = None,
    output_key: OutputKey = None,
    sklearn: Sklearn = "",
    ensemble: EnsembleFlag = False,
    ensemble_mode: EnsembleMode = "loss",
    attack: AttackName = "pgd-linf",
    eps: Eps = 0.3,
    steps: Steps = None,
    early_stop: EarlyStop = False,
    universal: UniversalFlag = False,
    universal_samples: UniversalSamples = None,
    dataset: Dataset = "mnist",
    data_root: DataRoot = None,
    num_samples: NumSamples = 1000,
    train_samples: TrainSamples = 5000,
    batch_size: BatchSize = 500,
    device: Device = None,
    seed: Seed = 0,
    out: Out = Path("robustkit-transfer"),
) -> None:
    """Craft adversarials on every model once and score them on every model."""
    from robustkit.attacks import attack_class
    from robustkit.auditing.results import ensure_writable_dir
    from robustkit.data import indices_record, load_dataset, subset
    from robustkit.transfer.result import STEM, UNIVERSAL_STEM

    out_dir = ensure_writable_dir(out)
    attack_class(attack)  # fail fast, before loading anything, on an unknown name
    kinds = _sklearn_kinds(sklearn)
    crafting = check_universal_samples(universal, universal_samples)
    nets = _load_nets(models, device, output_index, output_key)
    whole = load_dataset(dataset, root=data_root)
    info = whole if num_samples is None else subset(whole, num_samples, seed)
    targets = _targets(nets, kinds, dataset, data_root, train_samples, seed)
    sources = _sources(nets, targets, ensemble, ensemble_mode)
    job = None
    if crafting is not None:
        job = crafting_job(whole, info.sample_indices(), crafting, seed=seed, root=data_root)
    settings = {"attack": attack, "eps": eps, "steps": steps, "early_stop": early_stop}
    result = _run(sources, targets, info, settings, batch_size=batch_size, seed=seed, job=job)
    result.config["dataset"] = info.name
    result.config.update(indices_record(info))  # which images: their dataset indices
    result.config["command"] = recorded_command()
    result.save(out_dir)
    print_table(matrix_table(result))
    written = f"{STEM}.csv/.pivot.csv/.svg/.png"
    if result.universal is not None:
        print_table(universal_table(result))
        written += f", {UNIVERSAL_STEM}.csv/.pt"
    stdout.print(f"{written} written to {out_dir}/", highlight=False)


def _sklearn_kinds(sklearn: str) -> list[str]:
    """The --sklearn kinds, checked before anything loads."""
    from robustkit.transfer.sklearn_targets import KINDS

    kinds = _names(sklearn)
    for kind in kinds:
        if kind not in KINDS:
            raise RobustkitError(
                f"unknown --sklearn model {kind!r}: choose from {', '.join(KINDS)}"
            )
    return kinds


def _load_nets(
    models: str, device: str | None, output_index: int | None, output_key: str | None
) -> dict[str, nn.Module]:
    """The --models, by spec."""
    from robustkit.models import load_model

    return {
        spec: load_model(spec, device=device, output_index=output_index, output_key=output_key)
        for spec in _names(models)
    }


def _targets(
    nets: dict[str, nn.Module],
    kinds: list[str],
    dataset: str,
    root: Path | None,
    train_samples: int,
    seed: int,
) -> dict[str, nn.Module]:
    """The --models and the --sklearn models trained on the training split."""
    from robustkit.transfer.sklearn_targets import train_sklearn_targets

    targets: dict[str, nn.Module] = dict(nets)
    if kinds:
        targets |= train_sklearn_targets(
            kinds, dataset, root=root, num_samples=train_samples, seed=seed
        )
    if not targets:
        raise RobustkitError("give at least one model with --models or --sklearn")
    return targets


def _sources(
    nets: dict[str, nn.Module], targets: dict[str, nn.Module], ensemble: bool, mode: str
) -> dict[str, nn.Module]:
    """The targets an attack can differentiate, and the ensemble of --models if asked for."""
    from robustkit.models.ensemble import Ensemble
    from robustkit.transfer.sklearn_targets import KINDS, PREFIX

    sources = {
        name: m
        for name, m in targets.items()
        if name in nets or KINDS[name.removeprefix(PREFIX)].differentiable
    }
    if ensemble:
        if len(nets) < 2:
            raise RobustkitError("--ensemble needs at least two --models")
        members = Ensemble(list(nets.values()), mode=mode)
        sources[members.name] = members
    return sources


def _run(
    sources: dict[str, nn.Module],
    targets: dict[str, nn.Module],
    info: DatasetInfo,
    settings: dict[str, Any],
    *,
    batch_size: int,
    seed: int,
    job: UniversalJob | None,
) -> TransferResult:
    """The matrix, under a progress bar per source."""
    from robustkit.progress import progress_bar
    from robustkit.transfer import transfer_matrix

    bar = progress_bar("crafting on {task.description}")
    tasks: dict[str, TaskID] = {}

    def on_progress(source: str, done: int, total: int) -> None:
        if source not in tasks:
            tasks[source] = bar.add_task(source, total=total)
        bar.update(tasks[source], completed=done)

    with bar:
        return transfer_matrix(
            sources,
            targets,
            info,
            **settings,
            batch_size=batch_size,
            seed=seed,
            on_progress=on_progress,
            universal=job,
        )


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


def universal_table(result: TransferResult) -> Table:
    """Each source's universal perturbation on each target: fooling rate and accuracy."""
    frame = result.universal
    assert frame is not None, "a matrix without universal perturbations"
    table = Table(
        title=f"universal perturbations ({frame['norm'].iloc[0]} eps={result.config['eps']:g}) "
        f"crafted on {result.config['universal']['crafting_source']}"
    )
    for column in ("source", "target", "fooling rate", "clean acc", "acc with it"):
        table.add_column(column, justify="left" if column in ("source", "target") else "right")
    for row in frame.itertuples():
        table.add_row(
            str(row.source),
            str(row.target),
            f"{row.fooling_rate:.1%}",
            f"{row.clean_accuracy:.1%}",
            f"{row.accuracy:.1%}",
        )
    return table


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
