"""The command line answers at once: building the app and its help loads no torch (issue 21),
and the names its help lists match the registries they mirror."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from robustkit.commands.choices import ENSEMBLE_MODES, FRESH_ARCHITECTURES, SKLEARN_KINDS

HEAVY = ("torch", "torchvision", "pandas", "matplotlib", "timm", "kornia", "scipy")

LOADED_AFTER = """
import json, sys
from robustkit.cli import main
args, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["robustkit", *args]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def _heavy_modules_after(*args: str) -> list[str]:
    """Run the CLI with ``args`` in a fresh interpreter; the heavy modules it imported."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, json.dumps(list(args)), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--version",),
        ("audit", "--help"),
        ("train", "--help"),
        ("transfer", "--help"),
        ("report", "--help"),
        ("train-gan", "--help"),
    ],
)
def test_help_and_version_load_no_heavy_library(args: tuple[str, ...]) -> None:
    assert _heavy_modules_after(*args) == []


def test_a_command_that_runs_loads_what_it_needs() -> None:
    """The probe above can see an import: listing the attacks loads torch."""
    assert "torch" in _heavy_modules_after("attacks")


def test_importing_the_package_loads_no_heavy_library() -> None:
    code = f"import sys, robustkit; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_help_choices_match_the_registries() -> None:
    from robustkit.models.architectures import ARCHITECTURES
    from robustkit.models.ensemble import MODES
    from robustkit.transfer.sklearn_targets import KINDS

    assert tuple(ARCHITECTURES) == FRESH_ARCHITECTURES
    assert tuple(KINDS) == SKLEARN_KINDS
    assert tuple(MODES) == ENSEMBLE_MODES
