"""Randomized canaries: the bundled MNIST CNN behind the randomness of classic randomized
defenses. None of them is robust; on a single pass they look broken everywhere and on average
they look robust, so only an EOT attack judged over many fresh passes measures them.

- :class:`~robustkit.models.masked.NoisyInput`: Gaussian noise on the input (sigma 0.1);
- :class:`ResizePad`: shrink the image to a random size and pad it back at a random place (Xie
  et al. 2018, "Mitigating adversarial effects through randomization");
- :class:`FeatureDropout`: dropout left on at inference, between the CNN's features and its head.

They load as ``--model robustkit.models.randomized:resize_pad_mnist_cnn`` (and the others).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.errors import RobustkitError
from robustkit.models.architectures import PooledMnistCNN
from robustkit.models.loader import load_model
from robustkit.models.masked import NoisyInput, _Canary
from robustkit.models.wrapper import RobustModel

MIN_SCALE = 0.75  # the smallest size the image is shrunk to, as a share of its side
DROPOUT = 0.5


class ResizePad(_Canary):
    """Shrinks each input to a random size in [``min_scale``, 1] of its side and pads it back to
    full size at a random offset, with zeros (MNIST's background), then classifies it. One
    batched affine resampling; differentiable, so the randomness is all that hides it."""

    def __init__(self, model: nn.Module, min_scale: float = MIN_SCALE) -> None:
        super().__init__(model, "resize-pad")
        self.min_scale = min_scale

    def forward(self, x: Tensor) -> Tensor:
        n = len(x)
        if n == 0:  # nothing to resample (affine_grid refuses an empty batch)
            return self.model(x)
        scale = torch.empty(n, device=x.device).uniform_(self.min_scale, 1.0)
        # in grid units the image spans [-1, 1]: a shrunk one can move by 1 - scale either way
        shift = (torch.rand(n, 2, device=x.device) * 2 - 1) * (1 - scale)[:, None]
        theta = torch.zeros(n, 2, 3, device=x.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale  # output pixel -> input pixel
        theta[:, :, 2] = -shift / scale[:, None]
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return self.model(F.grid_sample(x, grid, padding_mode="zeros", align_corners=False))


class FeatureDropout(_Canary):
    """Dropout (rate ``p``) left on at inference on the features of a bundled pooled CNN
    (``features`` then ``classifier`` inside a :class:`RobustModel`)."""

    def __init__(self, model: RobustModel, p: float = DROPOUT) -> None:
        super().__init__(model, "dropout")
        if not isinstance(model.model, PooledMnistCNN):
            raise RobustkitError(
                f"FeatureDropout needs a bundled pooled MNIST CNN, got {type(model.model).__name__}"
            )
        self.robust = model
        self.net = model.model
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        mean, std = self.robust.mean, self.robust.std
        if mean is not None and std is not None:
            x = (x - mean) / std
        features = self.net.features(x)
        return self.net.classifier(F.dropout(features, self.p, training=True))


def noisy_mnist_cnn() -> nn.Module:
    """``zoo:mnist-cnn`` with Gaussian input noise (sigma 0.1) on every pass."""
    return NoisyInput(load_model("zoo:mnist-cnn", device="cpu"))


def resize_pad_mnist_cnn() -> nn.Module:
    """``zoo:mnist-cnn`` behind a random resize-and-pad on every pass."""
    return ResizePad(load_model("zoo:mnist-cnn", device="cpu"))


def dropout_mnist_cnn() -> nn.Module:
    """``zoo:mnist-cnn`` with dropout (0.5) left on at inference."""
    return FeatureDropout(load_model("zoo:mnist-cnn", device="cpu"))
