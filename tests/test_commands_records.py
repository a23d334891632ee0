"""An options record becomes a Typer command's options: parsed into one frozen record, in field
order, with the fields' defaults, flags and help; the audit and train records are the commands'."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from robustkit.commands.audit import audit_command
from robustkit.commands.audit_options import AuditOptions
from robustkit.commands.records import takes_options
from robustkit.commands.train import train_command
from robustkit.commands.train_options import TrainOptions


@dataclass(frozen=True, kw_only=True)
class Greeting:
    name: Annotated[str, typer.Option(help="whom to greet")] = "world"
    times: Annotated[int, typer.Option(help="how often")] = 1
    out: Annotated[Path | None, typer.Option(help="where to write")] = None
    loud: Annotated[bool, typer.Option("--loud/--quiet", help="shout")] = False


def greeting_app(seen: list[Greeting]) -> typer.Typer:
    @takes_options(Greeting)
    def greet(options: Greeting) -> None:
        """Say hello."""
        seen.append(options)

    app = typer.Typer(add_completion=False)
    app.command("greet")(greet)
    app.command("other")(lambda: None)  # two commands: greet is a subcommand, as in robustkit
    return app


def test_the_command_line_arrives_as_one_record_with_the_fields_defaults() -> None:
    seen: list[Greeting] = []
    app = greeting_app(seen)
    runner = CliRunner()
    assert runner.invoke(app, ["greet", "--times", "3", "--loud", "--out", "x"]).exit_code == 0
    assert runner.invoke(app, ["greet"]).exit_code == 0
    assert seen == [Greeting(times=3, loud=True, out=Path("x")), Greeting()]
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen[0].times = 4  # type: ignore[misc]


def test_the_help_lists_the_fields_in_order_with_their_help() -> None:
    shown = CliRunner().invoke(greeting_app([]), ["greet", "--help"], env={"COLUMNS": "120"})
    text = shown.output
    assert shown.exit_code == 0 and "Say hello." in text
    flags = ["--name", "--times", "--out", "--loud"]
    assert [text.index(flag) for flag in flags] == sorted(text.index(flag) for flag in flags)
    assert "whom to greet" in text and "[default: world]" in text and "--quiet" in text


def test_a_bad_value_is_a_usage_error_naming_the_option() -> None:
    shown = CliRunner().invoke(greeting_app([]), ["greet", "--times", "many"])
    assert shown.exit_code == 2 and "--times" in shown.output


@pytest.mark.parametrize(
    ("command", "record"), [(audit_command, AuditOptions), (train_command, TrainOptions)]
)
def test_the_commands_take_their_records_fields(command, record) -> None:
    parameters = inspect.signature(command).parameters
    fields = dataclasses.fields(record)
    assert list(parameters) == [field.name for field in fields]
    assert [p.default for p in parameters.values()] == [field.default for field in fields]
