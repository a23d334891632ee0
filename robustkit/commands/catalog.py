"""`robustkit attacks` and `robustkit models`: what is registered and bundled."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from robustkit.attacks import list_attacks
from robustkit.commands.console import stdout
from robustkit.models import list_zoo_models


def attacks_command(pattern: Annotated[str, typer.Argument()] = "*") -> None:
    """List the registered attacks."""
    for name in list_attacks(pattern):
        stdout.print(name)


def models_command() -> None:
    """List the bundled models (zoo:NAME)."""
    table = Table(title="bundled models")
    for column in ("spec", "dataset", "description"):
        table.add_column(column)
    for entry in list_zoo_models():
        table.add_row(f"zoo:{entry.name}", entry.dataset, entry.description)
    stdout.print(table)
