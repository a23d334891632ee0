"""Fixtures of the minimum-norm attacks' tests (FAB-T and FMN)."""

from __future__ import annotations

import pytest
import torch
from cases import BlockLinear
from torch import Tensor, nn

from robustkit.data import load_dataset


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the shared test machine is oversubscribed, and these loops are small."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def linear() -> tuple[BlockLinear, Tensor, Tensor]:
    model = BlockLinear()
    x = 0.35 + 0.3 * torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return model, x, y


@pytest.fixture
def mlp() -> tuple[nn.Module, Tensor, Tensor]:
    """A small random ReLU network: non-linear boundaries, instant to run."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 5))
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return model, x, y


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, Tensor, Tensor]:
    """An MLP fitted in a moment on half the bundled MNIST sample, and 40 images it gets right."""
    dataset = load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(500)])
    y = torch.tensor([int(dataset[i][1]) for i in range(500)])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        correct = model(x).argmax(dim=1) == y
    return model, x[correct][:40].contiguous(), y[correct][:40].contiguous()
