"""The sub-packages form layers along the pipeline: no package loads one it must not know about.

Each package is imported, every module of it, in a fresh interpreter; then ``sys.modules`` tells
which other sub-packages came along.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import robustkit

ROOT = Path(robustkit.__file__).parent
LATER = ("training", "commands", "testing")  # loops, CLI and plugin: nothing below may load them
# Importing any module of the package on the left must not load the packages on the right.
RULES: dict[str, tuple[str, ...]] = {
    "corruptions": ("data", "models", "generative", "attacks", "auditing", "defenses", "reports"),
    "data": ("models", "generative", "attacks", "auditing", "defenses", "transfer", "reports"),
    "models": ("generative", "attacks", "auditing", "defenses", "transfer", "reports"),
    "generative": ("attacks", "auditing", "defenses", "transfer", "reports"),
    "attacks": ("auditing", "defenses", "transfer", "reports"),  # latent attack: generative ok
    "auditing": ("defenses", "transfer", "reports"),
    "defenses": ("transfer", "reports"),
    "transfer": ("defenses", "reports"),
    "reports": ("models", "generative", "attacks", "defenses"),  # renders saved results only
    "training": ("commands", "testing"),
}
PROBE = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.walk_packages(getattr(package, "__path__", []), sys.argv[1] + "."):
    importlib.import_module(module.name)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after_import(package: str) -> set[str]:
    """The modules ``sys.modules`` holds after a fresh interpreter imports all of ``package``."""
    env = os.environ | {"PYTHONPATH": str(ROOT.parent)}
    run = subprocess.run(
        [sys.executable, "-c", PROBE, package], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    return set(json.loads(run.stdout))


def modules_of(name: str) -> set[str]:
    """Every module of the sub-package (or top-level module) ``robustkit.name``."""
    if (ROOT / f"{name}.py").is_file():
        return {f"robustkit.{name}"}
    files = (ROOT / name).rglob("*.py")
    dotted = (".".join(p.relative_to(ROOT.parent).with_suffix("").parts) for p in files)
    return {m.removesuffix(".__init__") for m in dotted}


@pytest.mark.parametrize("name", RULES)
def test_a_package_loads_no_package_of_a_later_layer(name: str) -> None:
    loaded = loaded_after_import(f"robustkit.{name}")
    assert modules_of(name) <= loaded  # the probe did import the whole package
    packages = {m.split(".")[1] for m in loaded if m.startswith("robustkit.")}
    forbidden = packages & {*RULES[name], *LATER} - {name}
    assert not forbidden, f"importing robustkit.{name} loads robustkit.{sorted(forbidden)}"
