"""Small MNIST architectures for the bundled model zoo (inputs are normalised)."""

from __future__ import annotations

from torch import Tensor, nn


class MnistCNN(nn.Module):
    """Two conv layers and two linear layers; about 105k parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 64),
            nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class MadryMnistCNN(nn.Module):
    """The MNIST network of Madry et al. (2018), used for adversarial-training benchmarks."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(7 * 7 * 64, 1024),
            nn.ReLU(),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class FastMnistCNN(nn.Module):
    """Two strided conv layers and two linear layers, no pooling (Wong et al. 2020's MNIST net).

    About 166k parameters (``width=1``); cheap enough for adversarial training on a CPU.
    """

    def __init__(self, num_classes: int = 10, width: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16 * width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16 * width, 32 * width, 4, stride=2, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * width * 7 * 7, 100 * width),
            nn.ReLU(),
            nn.Linear(100 * width, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class WideFastMnistCNN(FastMnistCNN):
    """FastMnistCNN with twice the channels and hidden units (about 650k parameters)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(num_classes, width=2)


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "mnist-cnn": MnistCNN,
    "madry-mnist": MadryMnistCNN,
    "fast-mnist": FastMnistCNN,
    "wide-fast-mnist": WideFastMnistCNN,
}
"""Fresh, untrained architectures by name (``arch:NAME`` for ``robustkit train``)."""
