"""`robustkit attacks` and `robustkit models`: what is registered and bundled."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from robustkit.commands.console import print_table, stdout


def attacks_command(pattern: Annotated[str, typer.Argument()] = "*") -> None:
    """List the registered attacks."""
    from robustkit.attacks import list_attacks

    for name in list_attacks(pattern):
        stdout.print(name)


def models_command() -> None:
    """List every bundled artefact: classifiers (--model zoo:NAME) and generators
    (--defense manifold:zoo:NAME, train --generator zoo:NAME)."""
    from robustkit.generative.zoo import GENERATOR_ZOO
    from robustkit.models import list_zoo_models

    table = Table(
        title="bundled models",
        caption="classifiers: --model zoo:NAME; generators: --defense manifold:zoo:NAME or "
        "train --method manifold --generator zoo:NAME",
    )
    for column in ("spec", "kind", "dataset", "description"):
        table.add_column(column, overflow="fold")
    for entry in list_zoo_models():
        table.add_row(f"zoo:{entry.name}", "classifier", entry.dataset, entry.description)
    for generator in GENERATOR_ZOO.values():
        table.add_row(
            f"zoo:{generator.name}", "generator", generator.dataset, generator.description
        )
    print_table(table)
