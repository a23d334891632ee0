"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from robustkit.cpu_memory import keep_freed_memory

if TYPE_CHECKING:
    from torch import nn

    from robustkit.generative.generators import Generator


keep_freed_memory()  # as the CLI does: tensor buffers are reused, not re-faulted, batch to batch


@pytest.fixture
def data_root() -> Path:
    """The real-data folder from ROBUSTKIT_DATA (MNIST/, FashionMNIST/); skip when unset."""
    root = os.environ.get("ROBUSTKIT_DATA")
    if not root and os.environ.get("CI"):
        pytest.fail("CI must set ROBUSTKIT_DATA (see .ci/run): the real-data tests cannot skip")
    if not root:
        pytest.skip("set ROBUSTKIT_DATA to a folder holding MNIST/raw and FashionMNIST/raw")
    return Path(root)


def assert_one_line_error(result: Any, *fragments: str) -> None:
    """A CLI run refused bad input as the project promises: exit 2, one line on stderr
    starting with ``error:`` and holding every fragment, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def one_line_error() -> Callable[..., None]:
    """:func:`assert_one_line_error`, for any test module."""
    return assert_one_line_error


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
