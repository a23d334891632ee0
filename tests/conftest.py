"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from torch import nn

    from robustkit.generative.generators import Generator


@pytest.fixture
def data_root() -> Path:
    """The real-data folder from ROBUSTKIT_DATA (MNIST/, FashionMNIST/); skip when unset."""
    root = os.environ.get("ROBUSTKIT_DATA")
    if not root and os.environ.get("CI"):
        pytest.fail("CI must set ROBUSTKIT_DATA (see .ci/run): the real-data tests cannot skip")
    if not root:
        pytest.skip("set ROBUSTKIT_DATA to a folder holding MNIST/raw and FashionMNIST/raw")
    return Path(root)


@pytest.fixture(scope="module")
def classifier() -> nn.Module:
    """The bundled zoo:mnist-cnn on the CPU."""
    from robustkit.models import load_model

    return load_model("zoo:mnist-cnn", device="cpu")


@pytest.fixture(scope="module")
def tiny_generator() -> Generator:
    """A seeded, untrained DCGAN generator (latent 16, width 16), frozen in eval mode."""
    import torch

    from robustkit.generative.generators import Generator, GeneratorConfig

    torch.manual_seed(0)
    return Generator(GeneratorConfig(latent_dim=16, width=16)).eval().requires_grad_(False)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, one torch thread per worker: the workers already fill the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
