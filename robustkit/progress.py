"""The one progress bar every long job shows: on stderr, only on a terminal, with an ETA."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(
    label: str = "{task.description}", *, enabled: bool = True, stats: bool = False
) -> Progress:
    """A transient bar led by ``label`` (a template that may use task fields), with elapsed time
    and an estimate of the time left; ``stats`` adds a ``stats`` text field after the bar."""
    console = Console(stderr=True)
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn()]
    if stats:
        columns.append(TextColumn("{task.fields[stats]}"))
    columns += [TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    return Progress(
        *columns,
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=True,
    )
