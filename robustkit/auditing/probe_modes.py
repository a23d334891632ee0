"""The noise probes' modes and their one-line description: light enough for the command line's
checks and for the report, which render saved records only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from robustkit.errors import RobustkitError

Mode = Literal["auto", "full", "off"]
MODES: tuple[Mode, ...] = ("auto", "full", "off")
FULL_OPTION = "--noise-probes full"


def describe_probes(record: Mapping[str, Any]) -> str:
    """One line on the probes an audit ran, from their run.json record; for cut probes, how to
    run them whole."""
    if record["mode"] == "off":
        return "noise probes: off"
    size = (
        f"a {record['grid']} x {record['grid']} noise grid of {record['samples_per_cell']} images "
        f"per cell, PGD-{record['steps']} from {record['samples_per_class']} noise images towards "
        f"each of {record['targets']} classes"
    )
    if not record["cut"]:
        return f"noise probes: {size}"
    return (
        f"noise probes cut to the audit's size: {size} (about {record['passes']:,} forward "
        f"passes of the model instead of {record['full_passes']:,}; the attacks take up to "
        f"{record['audit_passes']:,}); {FULL_OPTION} runs them whole"
    )


def check_mode(mode: bool | str) -> Mode:
    """``auto``, ``full`` or ``off`` (True is ``auto``, False ``off``)."""
    if isinstance(mode, bool):
        return "auto" if mode else "off"
    if mode not in MODES:
        raise RobustkitError(
            f"the noise probes (--noise-probes, noise_probes=) take auto, full or off, got {mode!r}"
        )
    return mode
