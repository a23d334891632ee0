"""The bundled model zoo: pretrained weights shipped inside the package, checked by sha256."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from robustkit.bundled import BundledEntry
from robustkit.models.architectures import FastMnistCNN, MnistCNN
from robustkit.models.wrapper import RobustModel
from robustkit.registry import Registry

WEIGHTS_DIR = Path(__file__).parent / "weights"
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
FASHION_MEAN = (0.2860,)
FASHION_STD = (0.3530,)


@dataclass(frozen=True, kw_only=True)
class ZooEntry(BundledEntry):
    """A bundled model: its weights file (in robustkit/models/weights), how to build the network
    and its input conventions."""

    factory: Callable[[], nn.Module]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape: tuple[int, int, int]
    num_classes: int


ZOO: Registry[ZooEntry] = Registry("zoo model")
for _entry in [
    ZooEntry(
        name="mnist-cnn",
        factory=MnistCNN,
        weights="mnist-cnn.pt",
        sha256="073029c56a11c60dd2ecce925efae578ceb4f294a0fa12638df27dc7da2730e0",
        dataset="mnist",
        mean=MNIST_MEAN,
        std=MNIST_STD,
        input_shape=(1, 28, 28),
        num_classes=10,
        description="small 2-conv CNN, standard training (3 epochs Adam), ~99% MNIST test",
    ),
    ZooEntry(
        name="mnist-robust",
        factory=FastMnistCNN,
        weights="mnist-robust.pt",
        sha256="92766d0a9826d7b82b1d7a068a63bdba945e0092cdace576605f761ec4cf48b4",
        dataset="mnist",
        mean=MNIST_MEAN,
        std=MNIST_STD,
        input_shape=(1, 28, 28),
        num_classes=10,
        description="fast-mnist CNN, PGD-3 adversarial training at L-inf eps 0.3 "
        "(6 epochs, eps ramp)",
    ),
    ZooEntry(
        name="fashion-cnn",
        factory=FastMnistCNN,
        weights="fashion-cnn.pt",
        sha256="70c70946a9698d60cc404813a0890996616965b6bee605731a295b5a7bfdfe2a",
        dataset="fashion-mnist",
        mean=FASHION_MEAN,
        std=FASHION_STD,
        input_shape=(1, 28, 28),
        num_classes=10,
        description="fast-mnist CNN, standard training (5 epochs Adam, cyclic LR)",
    ),
    ZooEntry(
        name="fashion-robust",
        factory=FastMnistCNN,
        weights="fashion-robust.pt",
        sha256="c867e48b25043904414704352456feb80661cb8cf99deaf4b924477cb639d469",
        dataset="fashion-mnist",
        mean=FASHION_MEAN,
        std=FASHION_STD,
        input_shape=(1, 28, 28),
        num_classes=10,
        description="fast-mnist CNN, PGD-2 adversarial training at L-inf eps 0.1 (4 epochs)",
    ),
]:
    ZOO.add(_entry.name, _entry)


def list_zoo_models() -> list[ZooEntry]:
    """All bundled models, in registration order."""
    return ZOO.values()


def load_zoo_model(name: str, device: str | torch.device | None = None) -> RobustModel:
    """Build a bundled model, verify and load its weights, and wrap it (eval mode)."""
    entry = ZOO.get(name)
    model = entry.factory()
    model.load_state_dict(entry.load(WEIGHTS_DIR))
    return RobustModel(
        model,
        mean=entry.mean,
        std=entry.std,
        input_shape=entry.input_shape,
        num_classes=entry.num_classes,
        name=entry.name,
        device=device,
    )
