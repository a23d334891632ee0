"""How `robustkit audit` meets the faults of a long run: a second audit on the same --out, Ctrl-C
or a scheduler's SIGTERM, a full or read-only disk, a batch the model fails on.

Each ends in one line on stderr holding the exact command that resumes (the user's own plus
``--resume``) and an exit code of its own: 130 or 143 for a signal, 2 for a disk that refuses a
write (or a folder another audit holds), 1 for a failing batch or noise probe. The saved batches
stay: nothing is written but whole files.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from robustkit.commands.console import recorded_command, stderr

if TYPE_CHECKING:
    from robustkit.folder_lock import Holder

RESUME = "--resume"


def resume_command() -> str:
    """The command line as the user typed it, with ``--resume`` (once)."""
    command = recorded_command()
    return command if RESUME in sys.argv[1:] else f"{command} {RESUME}"


@contextmanager
def guarded(out: Path) -> Iterator[None]:
    """Run an audit writing to ``out``: its lock held (rank 0 of a distributed audit), signals
    turned into a clean stop, and the faults above into one line and their exit code."""
    from robustkit.auditing.failures import BatchFailed, ProbesFailed
    from robustkit.files import UnwritableError
    from robustkit.folder_lock import lock_folder
    from robustkit.interrupts import Interrupted, stop_on_signals

    main = os.environ.get("RANK", "0") == "0"  # torchrun's ranks share --out; rank 0 locks it
    resume = resume_command()
    with lock_folder(out, recorded_command()) if main else _unlocked() as stale:
        if stale is not None:
            _say(f"note: took over the lock of an audit that is gone ({stale.describe()})")
        said: list[str] = []

        def stop_now(signum: int) -> None:
            """A second signal: the line (unless said), and out at once."""
            if main and not said:
                os.write(2, f"{_interrupted(signum, out, resume)}\n".encode())
            if sys.stderr.isatty():
                os.write(2, b"\x1b[?25h")  # the progress bar hid the cursor
            os._exit(128 + signum)

        with stop_on_signals(stop_now):
            try:
                yield
            except Interrupted as stop:
                if main:
                    line = _interrupted(stop.signum, out, resume)
                    _say(line)
                    said.append(line)  # after: a second signal meanwhile says it, at worst again
                raise typer.Exit(stop.exit_code) from None
            except BatchFailed as failed:
                _error(
                    f"{failed.failure.describe()}; {_saved(out)}; fix the model and resume with: "
                    f"{resume} (or add --skip-bad to record its images as errors)"
                )
                raise typer.Exit(1) from None
            except ProbesFailed as err:
                _error(f"{err}; {_saved(out)}; fix the model and resume with: {resume}")
                raise typer.Exit(1) from None
            except UnwritableError as err:
                _error(f"{err}; {_saved(out)}; then resume with: {resume}")
                raise typer.Exit(2) from None


@contextmanager
def _unlocked() -> Iterator[Holder | None]:
    yield None


def _interrupted(signum: int, out: Path, resume: str) -> str:
    return f"interrupted by {signal.Signals(signum).name}: {_saved(out)}; resume with: {resume}"


def _saved(out: Path) -> str:
    """``3 of 8 batches saved in out/progress``."""
    from robustkit.auditing.progress import ProgressStore

    folder = out / "progress"
    counts = ProgressStore(folder).counts()
    if counts is None:
        return "no batch saved yet"
    return f"{counts[0]} of {counts[1]} batches saved in {folder}"


def _say(line: str) -> None:
    stderr.print(line, highlight=False, markup=False, soft_wrap=True)


def _error(line: str) -> None:
    """One ``error:`` line, as :func:`~robustkit.commands.console.clean_errors` prints them."""
    stderr.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
