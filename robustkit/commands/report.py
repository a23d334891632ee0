"""`robustkit report`: one HTML report from one or several results folders.

Registered in robustkit.cli as ``app.command("report")(clean_errors(report_command))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

DEFAULT_NAME = "report.html"


def report_command(
    dirs: Annotated[
        list[Path], typer.Argument(help="results folders written by `robustkit audit --out`")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="HTML file to write (default: DIR/report.html for one folder, "
            "robustkit-report.html for several)"
        ),
    ] = None,
) -> None:
    """Write one self-contained HTML report; several folders compare models side by side. A
    folder whose audit was cut or is still running shows what it saved, marked partial."""
    from robustkit.auditing.partial import partial_state
    from robustkit.reports import report_from_dirs

    if out is None:
        out = dirs[0] / DEFAULT_NAME if len(dirs) == 1 else Path("robustkit-report.html")
    path = report_from_dirs(dirs, out)
    console = Console()
    console.print(f"report written to {path}", highlight=False)
    for folder in dirs:
        state = partial_state(folder)
        if state is not None:
            console.print(
                f"{folder}: partial results: {state.describe()}", highlight=False, soft_wrap=True
            )
