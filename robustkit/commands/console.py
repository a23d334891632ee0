"""Console helpers shared by the long-running commands."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler


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
