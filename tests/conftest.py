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


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, one torch thread per worker: the workers already fill the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
