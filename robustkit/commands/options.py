"""Command-line values shared by several commands: option aliases and parsers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robustkit.errors import RobustkitError

DataRoot = Annotated[Path | None, typer.Option(help="dataset folder (default: $ROBUSTKIT_DATA)")]
Device = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 (default: cuda if available)")]
Seed = Annotated[int, typer.Option(help="seed for subsets, initialisation and random starts")]
BatchSize = Annotated[int, typer.Option(help="images per batch")]
Labels = Annotated[
    Path | None,
    typer.Option(
        help="imagefolder: CSV of folder,index lines giving each class folder's model class "
        "[default: by the model's class names or ImageNet wnids, else the folders' order]",
        show_default=False,
    ),
]
Precision = Annotated[
    str, typer.Option(help="the model's forward in fp32, or autocast to bf16 or fp16 (GPU only)")
]
ChannelsLast = Annotated[
    bool, typer.Option(help="channels_last memory format: faster convolutions on CUDA")
]
Compile = Annotated[
    bool, typer.Option("--compile/--no-compile", help="torch.compile the model's forward")
]
OutputIndex = Annotated[
    int | None,
    typer.Option(
        help="a model returning a tuple or list: the element holding the logits "
        "(a dict: the value in its order) [default: 0]",
        show_default=False,
    ),
]
OutputKey = Annotated[
    str | None,
    typer.Option(
        help="a model returning a dict or an object: the key or attribute holding the logits "
        "[default: logits]",
        show_default=False,
    ),
]


def parse_floats(text: str, option: str) -> list[float]:
    """'0.1,0.3' -> [0.1, 0.3]; anything else names the option to fix."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise RobustkitError(
            f"{option} takes comma-separated numbers like 0.1,0.3, got {text!r}"
        ) from None
    if not values:
        raise RobustkitError(f"{option} needs at least one number")
    return values


def parse_budgets(text: str, option: str, minimum: float | None = None) -> list[float]:
    """Budgets of one norm: comma-separated numbers (none below ``minimum``, if given), or
    ``none`` for no attack of that norm."""
    values = [] if text.strip().lower() == "none" else parse_floats(text, option)
    for value in values:
        if minimum is not None and value < minimum:
            raise RobustkitError(f"{option} must be >= {minimum:g}, got {value:g}")
    return values


def parse_names(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']."""
    return [part.strip() for part in text.split(",") if part.strip()]


def require_positive(**values: int | None) -> None:
    """Refuse a count below 1, naming the option (``batch_size`` -> ``--batch-size``)."""
    for name, value in values.items():
        if value is not None and value < 1:
            option = "--" + name.replace("_", "-")
            raise RobustkitError(f"{option} must be >= 1, got {value}")
