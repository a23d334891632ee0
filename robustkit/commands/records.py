"""Typer commands whose options are the fields of a frozen dataclass, an *options record*.

A command with dozens of options keeps them out of its function: the record declares each one
once (its type, ``typer.Option(...)`` annotation and default), and :func:`takes_options` turns
``body(options: Record)`` into the keyword-only command Typer reads (``inspect.signature`` and
the type hints), calling ``body`` with the record the command line built. The command's help is
the body's docstring; the options appear in the record's field order.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, get_type_hints

R = TypeVar("R")


def takes_options(record: type[R]) -> Callable[[Callable[[R], None]], Callable[..., None]]:
    """Decorate ``body(options: record) -> None`` into a command whose parameters are the
    fields of the dataclass ``record``, and which calls ``body`` with them as one record."""
    hints = get_type_hints(record, include_extras=True)  # the fields' Annotated[...] types
    parameters = [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty
            if field.default is dataclasses.MISSING
            else field.default,
            annotation=hints[field.name],
        )
        for field in dataclasses.fields(record)  # type: ignore[arg-type]
    ]

    def decorate(body: Callable[[R], None]) -> Callable[..., None]:
        @functools.wraps(body)
        def command(**options: Any) -> None:
            body(record(**options))

        command.__dict__["__signature__"] = inspect.Signature(parameters, return_annotation=None)
        command.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
        return command

    return decorate
