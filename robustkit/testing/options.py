"""Parsers for the plugin's --robustkit-* options: bad values fail when pytest parses them."""

from __future__ import annotations

import argparse
from pathlib import Path

from robustkit.errors import RobustkitError
from robustkit.testing.baseline import Baseline


def positive_int(value: str) -> int:
    """An integer >= 1 (a sample count)."""
    number = _int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def seed(value: str) -> int:
    """An integer >= 0."""
    number = _int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


def fraction(value: str) -> float:
    """A number in [0, 1]."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}") from None
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return number


def device(value: str) -> str:
    """A torch device name this machine has."""
    from robustkit.models.device import resolve_device  # lazy: other options need no torch

    try:
        resolve_device(value)
    except RobustkitError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def report_dir(value: str) -> Path:
    """A folder for the session report (created when the session ends)."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a file: give a folder for the report")
    return path


def baseline(value: str) -> Baseline:
    """A baseline JSON file, read now so a corrupt one fails before any test runs."""
    try:
        return Baseline.read(value)
    except RobustkitError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
