"""The robustkit command line: a thin Typer app; each command lives in robustkit.commands."""

from __future__ import annotations

import sys
from importlib.metadata import version
from typing import Annotated

import typer

from robustkit.commands.audit import audit_command
from robustkit.commands.catalog import attacks_command, models_command
from robustkit.commands.console import clean_errors, stderr, stdout
from robustkit.commands.gan import train_gan_command
from robustkit.commands.report import report_command
from robustkit.commands.train import train_command
from robustkit.commands.transfer import transfer_command

__all__ = ["app", "main"]

app = typer.Typer(
    help="Adversarial-robustness testing for PyTorch image classifiers.",
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        stdout.print(f"robustkit {version('robustkit')}", highlight=False)
        raise typer.Exit()


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Adversarial-robustness testing for PyTorch image classifiers."""


app.command("audit")(clean_errors(audit_command))
app.command("attacks")(attacks_command)
app.command("models")(models_command)
app.command("train")(clean_errors(train_command))
app.command("transfer")(clean_errors(transfer_command))
app.command("report")(clean_errors(report_command))
app.command("train-gan")(clean_errors(train_gan_command))


def main() -> None:
    """The ``robustkit`` entry point: the app, with a usage error (an unknown option or command,
    a missing or malformed value) turned into one line and exit 2 like every other bad input.
    Freed CPU tensor memory stays in the process for the next batch (robustkit.cpu_memory)."""
    from robustkit.cpu_memory import keep_freed_memory

    keep_freed_memory()
    try:
        code = app(prog_name="robustkit", standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as err:  # typer's usage errors (its own copy of click's)
        context = getattr(err, "ctx", None)
        where = f" (see {context.command_path} --help)" if context is not None else ""
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        stderr.print(f"error: {message}{where}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(getattr(err, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)
