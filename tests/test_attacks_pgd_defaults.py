"""PGD's default step size is no weaker than foolbox's PGD defaults on a natural model.

The bundled natural MNIST CNN, 100 bundled images, every attack from the same seed (foolbox draws
its random start from the same global torch RNG). Robust accuracy with our defaults must be at
most foolbox's plus one point (``benchmarks/pgd_stepsize.py`` measures the margin on more models).
"""

from __future__ import annotations

import foolbox as fb
import pytest
import torch
from torch import Tensor, nn

from robustkit.attacks.pgd import PGDL2, PGDLinf
from robustkit.data import load_dataset
from robustkit.models import load_zoo_model

NUM_IMAGES = 100
TOLERANCE = 0.01  # robust accuracy, as a fraction


@pytest.fixture(scope="module")
def model() -> nn.Module:
    """The bundled natural MNIST CNN on the CPU, frozen."""
    net = load_zoo_model("mnist-cnn", device="cpu")
    net.requires_grad_(False)
    return net.eval()


@pytest.fixture(scope="module")
def batch() -> tuple[Tensor, Tensor]:
    """The first NUM_IMAGES images of the bundled MNIST sample."""
    dataset = load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(NUM_IMAGES)])
    y = torch.tensor([int(dataset[i][1]) for i in range(NUM_IMAGES)])
    return x, y


def robust_accuracy(model: nn.Module, x_adv: Tensor, y: Tensor) -> float:
    """Share of adversarials still classified as their label."""
    with torch.no_grad():
        return (model(x_adv).argmax(dim=1) == y).float().mean().item()


def foolbox_accuracy(
    attack: fb.attacks.Attack, model: nn.Module, x: Tensor, y: Tensor, eps: float
) -> float:
    """Robust accuracy under a foolbox attack run from seed 0."""
    torch.manual_seed(0)
    _, clipped, _ = attack(fb.PyTorchModel(model, bounds=(0.0, 1.0)), x, y, epsilons=eps)
    return robust_accuracy(model, clipped, y)


@pytest.mark.parametrize("steps", [40, 10])
def test_pgd_linf_defaults_no_weaker_than_foolbox_linfpgd(model, batch, steps):
    x, y = batch
    eps = 0.1
    torch.manual_seed(0)
    ours = robust_accuracy(model, PGDLinf(steps=steps)(model, x, y, eps=eps).x_adv, y)
    theirs = foolbox_accuracy(fb.attacks.LinfPGD(steps=steps), model, x, y, eps)
    assert theirs > 0.3  # the comparison means something: foolbox leaves points to break
    assert ours <= theirs + TOLERANCE, (ours, theirs)


def test_pgd_l2_defaults_no_weaker_than_foolbox_l2pgd(model, batch):
    x, y = batch
    eps = 1.0
    torch.manual_seed(0)
    ours = robust_accuracy(model, PGDL2()(model, x, y, eps=eps).x_adv, y)
    theirs = foolbox_accuracy(fb.attacks.L2PGD(), model, x, y, eps)
    assert theirs > 0.3
    assert ours <= theirs + TOLERANCE, (ours, theirs)
