"""Small MNIST architectures for the bundled model zoo (inputs are normalised)."""

from __future__ import annotations

from torch import Tensor, nn


class PooledMnistCNN(nn.Module):
    """Two conv + max-pool blocks (``channels``, ``kernel`` x ``kernel``, same padding) and two
    linear layers with ``hidden`` units."""

    def __init__(
        self, channels: tuple[int, int], kernel: int, hidden: int, num_classes: int = 10
    ) -> None:
        super().__init__()
        first, second = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, first, kernel, padding=kernel // 2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, kernel, padding=kernel // 2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(second * 7 * 7, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class MnistCNN(PooledMnistCNN):
    """16 and 32 channels of 3 x 3, 64 hidden units; about 105k parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__((16, 32), kernel=3, hidden=64, num_classes=num_classes)


class MadryMnistCNN(PooledMnistCNN):
    """The MNIST network of Madry et al. (2018): 32 and 64 channels of 5 x 5, 1024 hidden units."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__((32, 64), kernel=5, hidden=1024, num_classes=num_classes)


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
