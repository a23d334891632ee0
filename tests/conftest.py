"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def data_root() -> Path:
    """The real-data folder from ROBUSTKIT_DATA (MNIST/, FashionMNIST/); skip when unset."""
    root = os.environ.get("ROBUSTKIT_DATA")
    if not root and os.environ.get("CI"):
        pytest.fail("CI must set ROBUSTKIT_DATA (see .ci/run): the real-data tests cannot skip")
    if not root:
        pytest.skip("set ROBUSTKIT_DATA to a folder holding MNIST/raw and FashionMNIST/raw")
    return Path(root)
