"""Console helpers shared by the long-running commands."""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.measure import Measurement
from rich.table import Table

from robustkit.errors import RobustkitError

stderr = Console(stderr=True)
stdout = Console()

F = TypeVar("F", bound=Callable[..., Any])


def clean_errors(command: F) -> F:
    """Turn a RobustkitError into one line on stderr and exit code 2."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RobustkitError as err:
            stderr.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return run  # type: ignore[return-value]


def print_table(table: Table) -> None:
    """A table on stdout; piped into a file it keeps its natural width instead of 80 columns."""
    if stdout.is_terminal:
        stdout.print(table)
        return
    natural = Measurement.get(stdout, stdout.options.update_width(10_000), table).maximum
    Console(width=max(stdout.width, natural)).print(table)


def recorded_command() -> str:
    """The command line as the user typed it, for run.json and the report."""
    return shlex.join(["robustkit", *sys.argv[1:]])


@contextmanager
def logging_to(console: Console) -> Iterator[None]:
    """Show the library's INFO log lines on ``console`` for the duration of a command."""
    logger = logging.getLogger("robustkit")
    handler = RichHandler(console=console, show_path=False, show_time=False)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
