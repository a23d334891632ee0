"""Console helpers shared by the long-running commands."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


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


def stats_progress(console: Console, label: str) -> Progress:
    """A progress bar on stderr (only on a terminal) with a ``stats`` text field after the bar;
    ``label`` is the leading column's template (it may use task fields)."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )
