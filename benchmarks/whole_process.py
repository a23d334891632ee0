"""Time whole commands as a user runs them: a fresh process each, wall clock from start to exit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def timed(
    command: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0, 1)
) -> tuple[float, str]:
    """Run ``command`` in a fresh process (environment ``env``, else this one's); its wall time
    and standard output. Fails loudly on an exit code not in ``ok`` (an audit exits 1 when a
    check flags its evaluation)."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def worst_case(out_dir: Path, eps: float, norm: str = "linf") -> float:
    """The worst-case robust accuracy at ``eps`` of ``norm`` from an audit's summary.csv."""
    import pandas as pd

    summary = pd.read_csv(out_dir / "summary.csv")
    rows = summary[
        (summary["attack"] == "worst-case")
        & (summary["norm"] == norm)
        & (summary["eps"].round(6) == round(eps, 6))
    ]
    return float(rows["robust_accuracy"].iloc[0])


def python_json(
    code: str, *args: str, env: dict[str, str] | None = None
) -> tuple[float, dict[str, Any]]:
    """Run a Python snippet that prints one JSON object as its last line, in a fresh process."""
    seconds, stdout = timed([sys.executable, "-c", code, *args], env=env, ok=(0,))
    return seconds, json.loads(stdout.strip().splitlines()[-1])
